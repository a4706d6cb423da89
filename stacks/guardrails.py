"""Guardrails: the GPU hosts stop when idle, run only in working hours, and have a budget."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from stacks.config import GuardrailConfig
from stacks.servers import GpuServers
from stacks.tagged import TaggedComponent

# EventBridge Scheduler's universal targets for the EC2 API.
START_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
STOP_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
ALARM_PERIOD_SECONDS = 300


class Guardrails(TaggedComponent):
    """Idle auto-stop alarms, a start/stop schedule and a monthly AWS Budget."""

    def __init__(
        self,
        name: str,
        config: GuardrailConfig,
        servers: GpuServers,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmbox:cloud:Guardrails", name, config.tags, opts)
        if config.idle_stop:
            for index, instance in enumerate(servers.instances):
                self._idle_alarm(f"{name}-idle-{index}", f"idle-{index}", config, instance)
        if config.schedule is not None:
            self._schedules(name, config, servers)
        budget = self.track(
            aws.budgets.Budget(
                f"{name}-monthly",
                budget_type="COST",
                limit_amount=f"{config.budget_usd:.2f}",
                limit_unit="USD",
                time_unit="MONTHLY",
                notifications=[
                    aws.budgets.BudgetNotificationArgs(
                        comparison_operator="GREATER_THAN",
                        notification_type=notification_type,
                        threshold=config.budget_threshold_percent,
                        threshold_type="PERCENTAGE",
                        subscriber_email_addresses=[config.budget_email],
                    )
                    # Warn on what was spent, and earlier on what AWS forecasts.
                    for notification_type in ("ACTUAL", "FORECASTED")
                ],
                tags=self.tags("budget"),
                opts=self.child(),
            )
        )
        self.budget_name = budget.name
        self.register_outputs({"budget_name": self.budget_name})

    def _idle_alarm(
        self, name: str, suffix: str, config: GuardrailConfig, instance: aws.ec2.Instance
    ) -> None:
        self.track(
            aws.cloudwatch.MetricAlarm(
                name,
                alarm_description=(
                    f"Stop the GPU host after {config.idle_minutes} min below "
                    f"{config.idle_cpu_percent}% CPU"
                ),
                namespace="AWS/EC2",
                metric_name="CPUUtilization",
                dimensions={"InstanceId": instance.id},
                statistic="Average",
                period=ALARM_PERIOD_SECONDS,
                evaluation_periods=config.idle_periods,
                threshold=config.idle_cpu_percent,
                comparison_operator="LessThanThreshold",
                # A stopped host sends no data; that must not count as "still idle".
                treat_missing_data="notBreaching",
                alarm_actions=[config.stop_action_arn],
                tags=self.tags(suffix),
                opts=self.child(),
            )
        )

    def _schedules(self, name: str, config: GuardrailConfig, servers: GpuServers) -> None:
        assert config.schedule is not None  # checked by the caller
        role = self.service_role(
            f"{name}-scheduler",
            "scheduler.amazonaws.com",
            "llmbox: lets EventBridge Scheduler start and stop the GPU hosts",
            "scheduler",
        )
        policy = self.track(
            aws.iam.RolePolicy(
                f"{name}-scheduler",
                role=role.id,
                policy=servers.instance_arns.apply(
                    lambda arns: json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["ec2:StartInstances", "ec2:StopInstances"],
                                    "Resource": arns,
                                }
                            ],
                        }
                    )
                ),
                opts=self.child(),
            )
        )
        instance_ids = servers.instance_ids.apply(lambda ids: json.dumps({"InstanceIds": ids}))
        for action, cron, target in (
            ("start", config.schedule.start_cron, START_TARGET_ARN),
            ("stop", config.schedule.stop_cron, STOP_TARGET_ARN),
        ):
            self.track(
                aws.scheduler.Schedule(
                    f"{name}-{action}",
                    description=f"llmbox: {action} the GPU hosts on working days",
                    schedule_expression=cron,
                    schedule_expression_timezone=config.schedule.timezone,
                    flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                    target=aws.scheduler.ScheduleTargetArgs(
                        arn=target, role_arn=role.arn, input=instance_ids
                    ),
                    opts=self.child(depends_on=[policy]),
                )
            )
