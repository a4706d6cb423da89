"""GatewayHost: the instance the TLS gateway (roles/gateway, fleet shape) runs on.

Why a small instance of its own rather than the first GPU host (the ``dedicated``
shape): the gateway then stays up while any GPU host is replaced, stopped or
re-converged (rolling updates drain one backend at a time through it), it runs the
Debian 12 image the gateway role is tested on (the default GPU image, Ubuntu 22.04,
ships HAProxy 2.4, older than the role's 2.6), and every GPU host is an identical
backend behind it, with nothing but its engine's port to reach.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.config import ServerConfig
from stacks.gateway_config import DEBIAN_AMI_OWNER, GatewayConfig
from stacks.network import GpuNetwork
from stacks.servers import (
    GpuServers,
    ansible_ready_user_data,
    encrypted_root,
    imdsv2_only,
    newest_ami,
)
from stacks.tagged import TaggedComponent

# HAProxy, its certificate and logs fit many times over in Debian's minimum (8 GB).
ROOT_VOLUME_GB = 16


class GatewayHost(TaggedComponent):
    """One x86_64 instance with an Elastic IP, in the gateway's security group.

    The Elastic IP keeps the gateway's address (the exported ``inferenceUrl`` and the
    names in its TLS certificate) the same when the schedule stops and starts it every
    working day; a plain public IP would change each morning.
    """

    instance_id: pulumi.Output[str]
    instance_arn: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    public_dns: pulumi.Output[str]
    private_ip: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: GatewayConfig,
        *,
        login: ServerConfig,
        network: GpuNetwork,
        servers: GpuServers,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmbox:cloud:GatewayHost", name, login.tags, opts)
        if network.gateway_security_group_id is None:
            raise ValueError("the network has no gateway security group (gateway not dedicated)")
        instance = self.track(
            aws.ec2.Instance(
                name,
                ami=newest_ami(DEBIAN_AMI_OWNER, config.ami_name_filter, self),
                instance_type=config.instance_type,
                subnet_id=network.subnet_id,
                vpc_security_group_ids=[network.gateway_security_group_id],
                associate_public_ip_address=True,
                key_name=servers.key_name,
                iam_instance_profile=servers.instance_profile_name,
                metadata_options=imdsv2_only(),
                root_block_device=encrypted_root(ROOT_VOLUME_GB, self.tags("gateway-root")),
                # Debian's image logs in as "admin"; this creates sshUser, as on the GPU hosts.
                user_data=ansible_ready_user_data(login.ssh_user, login.ssh_public_key),
                tags=self.tags("gateway"),
                # As the GPU hosts: a newer Debian image never replaces a running gateway.
                opts=self.child(ignore_changes=["ami"]),
            )
        )
        address = self.track(
            aws.ec2.Eip(
                f"{name}-ip",
                domain="vpc",
                instance=instance.id,
                tags=self.tags("gateway-ip"),
                opts=self.child(),
            )
        )
        self.instance = instance
        self.instance_id = instance.id
        self.instance_arn = instance.arn
        self.public_ip = address.public_ip
        self.public_dns = address.public_dns
        self.private_ip = instance.private_ip
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "public_ip": self.public_ip,
                "public_dns": self.public_dns,
                "private_ip": self.private_ip,
            }
        )
