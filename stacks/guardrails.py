"""Guardrails: the GPU hosts stop when idle, run only in working hours, and have a budget."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.config import GuardrailConfig
from stacks.gateway import GatewayHost
from stacks.servers import GpuServers
from stacks.tagged import TaggedComponent

# EventBridge Scheduler's universal targets for the EC2 API.
START_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
STOP_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
ALARM_PERIOD_SECONDS = 300
SSM_SERVICE = "ssm.amazonaws.com"


def _with_attach_statement(
    statements: list[dict[str, Any]], role_arn: str | None, policy_arn: str | None
) -> list[dict[str, Any]]:
    """The stop permissions, plus attaching/detaching the hold policy on the scheduler role."""
    if role_arn is None or policy_arn is None:
        return statements
    return [
        *statements,
        {
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            "Resource": role_arn,
            "Condition": {"ArnEquals": {"iam:PolicyARN": policy_arn}},
        },
    ]


class Guardrails(TaggedComponent):
    """Idle auto-stop alarms, a start/stop schedule and a monthly AWS Budget."""

    def __init__(
        self,
        name: str,
        config: GuardrailConfig,
        servers: GpuServers,
        opts: pulumi.ResourceOptions | None = None,
        gateway: GatewayHost | None = None,
    ) -> None:
        super().__init__("llmbox:cloud:Guardrails", name, config.tags, opts)
        # The schedule and the budget stop the gateway with the GPU hosts (it has nothing
        # to serve without them); the idle alarm does not watch it: a gateway's CPU is
        # near zero even while it serves.
        extra = [] if gateway is None else [gateway.instance]
        self._ids: pulumi.Output[list[str]] = pulumi.Output.all(
            servers.instance_ids, *[i.id for i in extra]
        ).apply(lambda v: [*v[0], *v[1:]])
        self._arns: pulumi.Output[list[str]] = pulumi.Output.all(
            servers.instance_arns, *[i.arn for i in extra]
        ).apply(lambda v: [*v[0], *v[1:]])
        if config.idle_stop:
            for index, instance in enumerate(servers.instances):
                self._idle_alarm(f"{name}-idle-{index}", f"idle-{index}", config, instance)
        scheduler_role = None
        if config.schedule is not None:
            scheduler_role = self._schedules(name, config)
        budget = self.track(
            aws.budgets.Budget(
                f"{name}-monthly",
                budget_type="COST",
                limit_amount=f"{config.budget_usd:.2f}",
                limit_unit="USD",
                time_unit="MONTHLY",
                # Only with the "stack" tag activated for cost allocation (Billing console)
                # does AWS attribute costs to it; a filter on an inactive tag would count
                # nothing and never fire, so without the flag the budget is account-wide.
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue", values=[f"user:stack${config.tags.stack}"]
                    )
                ]
                if config.cost_allocation_tags_active
                else None,
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
        if config.stop_on_budget:
            self._budget_stop(name, config, budget, scheduler_role)
        self.register_outputs({"budget_name": self.budget_name})

    def _budget_stop(
        self,
        name: str,
        config: GuardrailConfig,
        budget: aws.budgets.Budget,
        scheduler_role: aws.iam.Role | None,
    ) -> None:
        """Budget actions: stop the hosts once actual spend passes budgetStopPercent.

        AWS Budgets runs the SSM automation AWS-StopEC2Instance with ``role``. An action
        runs once per budget period, so with a working-hours schedule a second action
        attaches a deny-StartInstances policy to the scheduler's role: otherwise the next
        morning's schedule would start the hosts again and the spend would go on.
        Starting again is a deliberate act (README: reverse the action, start the hosts).
        """
        role = self.service_role(
            f"{name}-budget",
            "budgets.amazonaws.com",
            "llmbox: lets AWS Budgets stop the GPU hosts when the budget is spent",
            "budget",
        )
        stop_statements = self._arns.apply(
            lambda arns: [
                # As AWS's managed AWSBudgetsActions_RolePolicyForResourceAdministrationWithSSM,
                # narrowed to this stack's instances and the stop document.
                {
                    "Effect": "Allow",
                    "Action": ["ec2:StopInstances"],
                    "Resource": arns,
                    "Condition": {"ForAnyValue:StringEquals": {"aws:CalledVia": [SSM_SERVICE]}},
                },
                {
                    "Effect": "Allow",
                    "Action": ["ec2:DescribeInstanceStatus"],
                    "Resource": "*",
                    "Condition": {"ForAnyValue:StringEquals": {"aws:CalledVia": [SSM_SERVICE]}},
                },
                {
                    "Effect": "Allow",
                    "Action": ["ssm:StartAutomationExecution"],
                    "Resource": f"arn:aws:ssm:{config.region}:*:automation-definition/"
                    "AWS-StopEC2Instance:*",
                },
            ]
        )
        subscribers = [
            aws.budgets.BudgetActionSubscriberArgs(
                address=config.budget_email, subscription_type="EMAIL"
            )
        ]
        threshold = aws.budgets.BudgetActionActionThresholdArgs(
            action_threshold_type="PERCENTAGE",
            action_threshold_value=config.budget_stop_percent,
        )
        deny_start: aws.iam.Policy | None = None
        if scheduler_role is not None:
            deny_start = self.track(
                aws.iam.Policy(
                    f"{name}-budget-hold",
                    description="llmbox: the budget is spent; the schedule may not start hosts",
                    policy=json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Deny", "Action": "ec2:StartInstances", "Resource": "*"}
                            ],
                        }
                    ),
                    tags=self.tags("budget-hold"),
                    opts=self.child(),
                )
            )
        attach_statements = pulumi.Output.all(
            stop_statements,
            scheduler_role.arn if scheduler_role is not None else None,
            deny_start.arn if deny_start is not None else None,
        ).apply(lambda v: _with_attach_statement(v[0], v[1], v[2]))
        permissions = self.track(
            aws.iam.RolePolicy(
                f"{name}-budget",
                role=role.id,
                policy=attach_statements.apply(
                    lambda statements: json.dumps(
                        {"Version": "2012-10-17", "Statement": statements}
                    )
                ),
                opts=self.child(),
            )
        )

        def budget_action(
            suffix: str, action_type: str, definition: aws.budgets.BudgetActionDefinitionArgs
        ) -> None:
            """One automatic action on actual spend past the stop share, e-mailed, run by
            the budgets role once its permissions exist."""
            self.track(
                aws.budgets.BudgetAction(
                    f"{name}-{suffix}",
                    budget_name=budget.name,
                    action_type=action_type,
                    approval_model="AUTOMATIC",
                    notification_type="ACTUAL",
                    action_threshold=threshold,
                    definition=definition,
                    execution_role_arn=role.arn,
                    subscribers=subscribers,
                    tags=self.tags(f"budget-{suffix}"),
                    opts=self.child(depends_on=[permissions]),
                )
            )

        budget_action(
            "stop",
            "RUN_SSM_DOCUMENTS",
            aws.budgets.BudgetActionDefinitionArgs(
                ssm_action_definition=aws.budgets.BudgetActionDefinitionSsmActionDefinitionArgs(
                    action_sub_type="STOP_EC2_INSTANCES",
                    instance_ids=self._ids,
                    region=config.region,
                )
            ),
        )
        if scheduler_role is not None and deny_start is not None:
            budget_action(
                "hold",
                "APPLY_IAM_POLICY",
                aws.budgets.BudgetActionDefinitionArgs(
                    iam_action_definition=aws.budgets.BudgetActionDefinitionIamActionDefinitionArgs(
                        policy_arn=deny_start.arn, roles=[scheduler_role.name]
                    )
                ),
            )

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

    def _schedules(self, name: str, config: GuardrailConfig) -> aws.iam.Role:
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
                policy=self._arns.apply(
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
        instance_ids = self._ids.apply(lambda ids: json.dumps({"InstanceIds": ids}))
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
        return role
