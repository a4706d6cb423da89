"""GpuNetwork: where the GPU hosts live and who may reach them."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.config import NetworkConfig
from stacks.tagged import TaggedComponent

SSH_PORT = 22


def _ingress(
    port: int, cidrs: tuple[str, ...], what: str
) -> list[aws.ec2.SecurityGroupIngressArgs]:
    """One rule per address family, so IPv4 and IPv6 networks can be mixed."""
    v4 = [c for c in cidrs if ":" not in c]
    v6 = [c for c in cidrs if ":" in c]
    rules = []
    if v4:
        rules.append(
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=port, to_port=port, cidr_blocks=v4, description=what
            )
        )
    if v6:
        rules.append(
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=port, to_port=port, ipv6_cidr_blocks=v6, description=what
            )
        )
    return rules


class GpuNetwork(TaggedComponent):
    """A VPC with one public subnet (or an existing pair) and the hosts' security group.

    SSH is open only to ``admin_cidrs``; the inference port only to ``client_cidrs``
    (and to the whole internet only when the config explicitly allows it, which the
    config object accepts only with a secret API key).
    """

    vpc_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, config: NetworkConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmbox:cloud:GpuNetwork", name, config.tags, opts)
        if config.vpc_id is not None and config.subnet_id is not None:
            vpc_id: pulumi.Input[str] = config.vpc_id
            subnet_id: pulumi.Input[str] = config.subnet_id
        else:
            vpc_id, subnet_id = self._new_vpc(name, config)

        security_group = self.track(
            aws.ec2.SecurityGroup(
                f"{name}-hosts",
                vpc_id=vpc_id,
                description="llmbox GPU hosts: SSH from admins, inference from clients",
                ingress=[
                    *_ingress(SSH_PORT, config.admin_cidrs, "SSH from admin networks"),
                    *_ingress(
                        config.inference_port,
                        config.inference_sources,
                        "OpenAI-compatible inference API from client networks",
                    ),
                ],
                # Hosts fetch drivers, packages and model weights.
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="-1",
                        from_port=0,
                        to_port=0,
                        cidr_blocks=["0.0.0.0/0"],
                        ipv6_cidr_blocks=["::/0"],
                        description="all outbound",
                    )
                ],
                tags=self.tags("hosts"),
                opts=self.child(),
            )
        )
        self.vpc_id = pulumi.Output.from_input(vpc_id)
        self.subnet_id = pulumi.Output.from_input(subnet_id)
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "subnet_id": self.subnet_id,
                "security_group_id": self.security_group_id,
            }
        )

    def _new_vpc(
        self, name: str, config: NetworkConfig
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        vpc = self.track(
            aws.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=config.vpc_cidr,
                enable_dns_hostnames=True,
                enable_dns_support=True,
                tags=self.tags("vpc"),
                opts=self.child(),
            )
        )
        subnet = self.track(
            aws.ec2.Subnet(
                f"{name}-public",
                vpc_id=vpc.id,
                cidr_block=config.subnet_cidr,
                availability_zone=config.availability_zone,
                map_public_ip_on_launch=True,
                tags=self.tags("public"),
                opts=self.child(),
            )
        )
        gateway = self.track(
            aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=vpc.id, tags=self.tags("igw"), opts=self.child()
            )
        )
        routes = self.track(
            aws.ec2.RouteTable(
                f"{name}-public",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
                tags=self.tags("public"),
                opts=self.child(),
            )
        )
        self.track(
            aws.ec2.RouteTableAssociation(
                f"{name}-public",
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=self.child(),
            )
        )
        return vpc.id, subnet.id
