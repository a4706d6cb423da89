"""The shared base of every llmbox component: tags and parenting in one place."""

from __future__ import annotations

import json
from typing import TypeVar

import pulumi
import pulumi_aws as aws

from stacks.config import CostTags

_R = TypeVar("_R", bound=pulumi.CustomResource)

# Resource types that accept tags: the policy tests check each of them carries
# every cost-allocation tag. Keep in step with what the components create.
TAGGABLE_TYPES = frozenset(
    {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/keyPair:KeyPair",
        "aws:ec2/instance:Instance",
        "aws:ec2/eip:Eip",
        "aws:iam/role:Role",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:budgets/budget:Budget",
        "aws:budgets/budgetAction:BudgetAction",
        "aws:iam/policy:Policy",
    }
)


class TaggedComponent(pulumi.ComponentResource):
    """A component whose children share its cost-allocation tags and parent."""

    def __init__(
        self,
        type_name: str,
        name: str,
        tags: CostTags,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_name, name, None, opts)
        self._cost_tags = tags
        self.resources: list[pulumi.CustomResource] = []

    def tags(self, suffix: str) -> dict[str, str]:
        """Every required cost tag plus a readable Name for the console."""
        return {
            **self._cost_tags.as_tags(),
            "Name": f"{self._cost_tags.project}-{self._cost_tags.stack}-{suffix}",
        }

    def child(self, **extra: object) -> pulumi.ResourceOptions:
        """Options for a child resource: parented here (providers flow from the parent)."""
        return pulumi.ResourceOptions(parent=self, **extra)  # type: ignore[arg-type]

    def track(self, resource: _R) -> _R:
        """Remember a child so tests can wait until every one is registered."""
        self.resources.append(resource)
        return resource

    def service_role(self, name: str, service: str, description: str, tag: str) -> aws.iam.Role:
        """An IAM role that only the AWS service ``service`` (e.g. ec2.amazonaws.com) may assume."""
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
        return self.track(
            aws.iam.Role(
                name,
                description=description,
                assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
                tags=self.tags(tag),
                opts=self.child(),
            )
        )
