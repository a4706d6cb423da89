"""GpuServers: the GPU instances, ready for Ansible the moment they boot."""

from __future__ import annotations

import shlex

import pulumi
import pulumi_aws as aws

from stacks.config import ServerConfig
from stacks.network import GpuNetwork
from stacks.tagged import TaggedComponent

SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def imdsv2_only() -> aws.ec2.InstanceMetadataOptionsArgs:
    """Instance metadata only through IMDSv2 session tokens, one network hop: a process
    in a container or a forwarded request cannot read the instance role's credentials."""
    return aws.ec2.InstanceMetadataOptionsArgs(
        http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
    )


def encrypted_root(size_gb: int, tags: dict[str, str]) -> aws.ec2.InstanceRootBlockDeviceArgs:
    """The guardrail every llmbox instance has: an encrypted gp3 root volume."""
    return aws.ec2.InstanceRootBlockDeviceArgs(
        volume_type="gp3",
        volume_size=size_gb,
        encrypted=True,
        delete_on_termination=True,
        tags=tags,
    )


def ansible_ready_user_data(ssh_user: str, public_key: str) -> str:
    """cloud-init user data: python3 and a passwordless-sudo SSH user for Ansible.

    The deep-learning AMIs already have ``ubuntu``; a different ``ssh_user`` is
    created, so the same inventory works whichever image was chosen.
    """
    user = shlex.quote(ssh_user)
    key = shlex.quote(public_key)
    return f"""#!/bin/bash
# Written by llmbox's Pulumi stack: ready this host for `ansible-playbook playbooks/site.yml`.
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-apt
  else
    dnf install -y python3
  fi
fi
if ! id {user} >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash {user}
fi
home=$(getent passwd {user} | cut -d: -f6)
install -d -m 700 -o {user} -g {user} "$home/.ssh"
touch "$home/.ssh/authorized_keys"
grep -qxF {key} "$home/.ssh/authorized_keys" || echo {key} >> "$home/.ssh/authorized_keys"
chown {user}:{user} "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
echo {shlex.quote(f"{ssh_user} ALL=(ALL) NOPASSWD:ALL")} > /etc/sudoers.d/90-llmbox
chmod 440 /etc/sudoers.d/90-llmbox
"""


def _market_options(config: ServerConfig) -> aws.ec2.InstanceInstanceMarketOptionsArgs | None:
    if not config.spot:
        return None
    return aws.ec2.InstanceInstanceMarketOptionsArgs(
        market_type="spot",
        spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
            # A persistent request that stops (not terminates) on interruption is what
            # lets the idle alarm and the working-hours schedule stop a spot host.
            spot_instance_type="persistent",
            instance_interruption_behavior="stop",
            # None = pay up to the on-demand price.
            max_price=None if config.spot_max_price is None else f"{config.spot_max_price:g}",
        ),
    )


def newest_ami(owner: str, name_filter: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest available x86_64 image of ``owner`` whose name matches ``name_filter``."""
    image = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[owner],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[name_filter]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"]),
            aws.ec2.GetAmiFilterArgs(name="state", values=["available"]),
        ],
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    return image.id


def _warn_newer_image(latest: str, running: list[str]) -> None:
    older = sorted({ami for ami in running if ami != latest})
    if older:
        pulumi.log.warn(
            f"a newer AMI {latest} matches amiNameFilter; hosts keep {', '.join(older)}. "
            f"To move (replaces those hosts, deleting their root volumes): "
            f"pulumi config set amiId {latest} && pulumi up"
        )


class GpuServers(TaggedComponent):
    """``instance_count`` GPU instances with IMDSv2, encrypted gp3 disks and SSM access."""

    instance_ids: pulumi.Output[list[str]]
    instance_arns: pulumi.Output[list[str]]
    public_ips: pulumi.Output[list[str]]
    public_dns: pulumi.Output[list[str]]
    private_ips: pulumi.Output[list[str]]
    ami_id: pulumi.Output[str]
    ami_ids: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        network: GpuNetwork,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmbox:cloud:GpuServers", name, config.tags, opts)
        ami_id = self._ami(config)
        # Replacing a GPU host deletes its root volume (model, llama.cpp build, config),
        # so no routine `pulumi up` may do it. With amiId unset the lookup below returns
        # whatever image Amazon published last; ignore_changes keeps every existing host
        # on the image it was created with (Pulumi keeps the old value from the state),
        # and only a new host boots the lookup's image. Moving to a newer image is an
        # explicit act: `pulumi config set amiId <ami>` (no ignore_changes then, so the
        # preview shows the replacement). Why not record the lookup in the stack config?
        # A program cannot write its own config, and a self-referencing StackReference
        # is fragile; ignore_changes is the engine's own, state-backed guarantee.
        pinned = ["ami"] if config.ami_id is None else []
        key_pair = self.track(
            aws.ec2.KeyPair(
                f"{name}-ssh",
                public_key=config.ssh_public_key,
                tags=self.tags("ssh"),
                opts=self.child(),
            )
        )
        profile = self._instance_profile(name)
        # The dedicated gateway logs in with the same key and gets the same SSM access.
        self.key_name = key_pair.key_name
        self.instance_profile_name = profile.name
        instances = [
            self.track(
                aws.ec2.Instance(
                    f"{name}-{index}",
                    ami=ami_id,
                    instance_type=config.instance_type,
                    subnet_id=network.subnet_id,
                    vpc_security_group_ids=[network.security_group_id],
                    associate_public_ip_address=True,
                    key_name=key_pair.key_name,
                    iam_instance_profile=profile.name,
                    metadata_options=imdsv2_only(),
                    root_block_device=encrypted_root(
                        config.root_volume_gb, self.tags(f"gpu-{index}-root")
                    ),
                    instance_market_options=_market_options(config),
                    user_data=ansible_ready_user_data(config.ssh_user, config.ssh_public_key),
                    tags=self.tags(f"gpu-{index}"),
                    opts=self.child(ignore_changes=pinned),
                )
            )
            for index in range(config.instance_count)
        ]
        self.instances = instances
        # What the hosts run (from their state, so a pinned host reports its own image),
        # and what the lookup or amiId offers this run.
        self.ami_ids = pulumi.Output.all(*[i.ami for i in instances])
        self.ami_id = pulumi.Output.from_input(ami_id)
        if config.ami_id is None:
            pulumi.Output.all(self.ami_id, self.ami_ids).apply(
                lambda values: _warn_newer_image(values[0], values[1])
            )
        self.instance_ids = pulumi.Output.all(*[i.id for i in instances])
        self.instance_arns = pulumi.Output.all(*[i.arn for i in instances])
        self.public_ips = pulumi.Output.all(*[i.public_ip for i in instances])
        self.public_dns = pulumi.Output.all(*[i.public_dns for i in instances])
        # The gateway reaches the engines here: inside the VPC, where the SG-to-SG rule holds.
        self.private_ips = pulumi.Output.all(*[i.private_ip for i in instances])
        self.register_outputs(
            {
                "instance_ids": self.instance_ids,
                "public_ips": self.public_ips,
                "public_dns": self.public_dns,
                "private_ips": self.private_ips,
                "ami_id": self.ami_id,
                "ami_ids": self.ami_ids,
            }
        )

    def _ami(self, config: ServerConfig) -> pulumi.Input[str]:
        if config.ami_id is not None:
            return config.ami_id
        return newest_ami(config.ami_owner, config.ami_name_filter, self)

    def _instance_profile(self, name: str) -> aws.iam.InstanceProfile:
        role = self.service_role(
            f"{name}-host",
            "ec2.amazonaws.com",
            "llmbox GPU hosts: SSM Session Manager access",
            "host",
        )
        self.track(
            aws.iam.RolePolicyAttachment(
                f"{name}-ssm", role=role.name, policy_arn=SSM_POLICY_ARN, opts=self.child()
            )
        )
        return self.track(
            aws.iam.InstanceProfile(
                f"{name}-host", role=role.name, tags=self.tags("host"), opts=self.child()
            )
        )
