"""GpuNetwork: where the GPU hosts live and who may reach them."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.config import NetworkConfig
from stacks.gateway_config import DEFAULT_GATEWAY_PORT, GatewayShape
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


_ALL_OUTBOUND = [
    # Hosts fetch drivers, packages and model weights; the gateway reaches the engines.
    aws.ec2.SecurityGroupEgressArgs(
        protocol="-1",
        from_port=0,
        to_port=0,
        cidr_blocks=["0.0.0.0/0"],
        ipv6_cidr_blocks=["::/0"],
        description="all outbound",
    )
]


class GpuNetwork(TaggedComponent):
    """A VPC with one public subnet (or an existing pair) and the security groups.

    SSH is open only to ``admin_cidrs``. Who reaches the API depends on the gateway:

    * none: the engine's port, to ``inference_sources`` (client networks, or the
      whole internet only when the config explicitly allows it with a secret key);
    * local: the gateway's HTTPS port on the GPU host instead; its engine listens on
      loopback, so its port is not opened at all;
    * dedicated: a second group for the gateway instance opens the HTTPS port to
      ``inference_sources``; the GPU hosts' engine port admits only that group (an
      SG-to-SG rule, which matches the gateway's private address, the one it uses to
      reach the engines) and the admin networks.
    """

    vpc_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    gateway_security_group_id: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        config: NetworkConfig,
        gateway: GatewayShape = GatewayShape.NONE,
        gateway_port: int = DEFAULT_GATEWAY_PORT,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmbox:cloud:GpuNetwork", name, config.tags, opts)
        if gateway is GatewayShape.AUTO:
            raise ValueError("resolve gateway 'auto' first (StackConfig.gateway_shape)")
        if config.vpc_id is not None and config.subnet_id is not None:
            vpc_id: pulumi.Input[str] = config.vpc_id
            subnet_id: pulumi.Input[str] = config.subnet_id
        else:
            vpc_id, subnet_id = self._new_vpc(name, config)

        ssh = _ingress(SSH_PORT, config.admin_cidrs, "SSH from admin networks")
        https = _ingress(gateway_port, config.inference_sources, "TLS gateway from client networks")
        self.gateway_security_group_id = None
        if gateway is GatewayShape.DEDICATED:
            gateway_group = self.track(
                aws.ec2.SecurityGroup(
                    f"{name}-gateway",
                    vpc_id=vpc_id,
                    description="llmbox gateway: SSH from admins, HTTPS from clients",
                    ingress=[*ssh, *https],
                    egress=_ALL_OUTBOUND,
                    tags=self.tags("gateway"),
                    opts=self.child(),
                )
            )
            self.gateway_security_group_id = gateway_group.id
            api = [
                *_ingress(config.inference_port, config.admin_cidrs, "engine from admin networks"),
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=config.inference_port,
                    to_port=config.inference_port,
                    security_groups=[gateway_group.id],
                    description="engine from the llmbox gateway",
                ),
            ]
        elif gateway is GatewayShape.LOCAL:
            api = https
        else:
            api = _ingress(
                config.inference_port,
                config.inference_sources,
                "OpenAI-compatible inference API from client networks",
            )

        security_group = self.track(
            aws.ec2.SecurityGroup(
                f"{name}-hosts",
                vpc_id=vpc_id,
                # Unchanged across shapes: AWS replaces a group whose description changes.
                description="llmbox GPU hosts: SSH from admins, inference from clients",
                ingress=[*ssh, *api],
                egress=_ALL_OUTBOUND,
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
                "gateway_security_group_id": self.gateway_security_group_id,
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
