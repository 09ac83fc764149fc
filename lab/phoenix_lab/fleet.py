"""The fleet simulator: AutoScaling as the lab plays it (test and demo tooling, never on the
runtime path).

Real AutoScaling and EC2 calls against the emulator decide which instances exist: the
groups, their launch templates, instance roles and hooks are the ones the network and
compute templates create in the emulator (``create_groups``), scaled with
``SetDesiredCapacity`` and
``TerminateInstanceInAutoScalingGroup``, and the emulator picks the instance ids and
launches the replacements. The emulator sends no lifecycle message and no notification, so
the simulator sends what AWS would, in AWS's exact shapes (``lab.messages``): lifecycle hook
messages straight to the data stack's queue (the hooks' target), notifications published
to the stack's topic (which delivers them to the queue in its envelope). Each lifecycle
action is kept as AWS keeps it (``LifecycleActions``: pending, completed, abandoned, timed
out), and what follows it happens as in AWS: a launch let go on (CONTINUE) puts the instance
in service and notifies ``EC2_INSTANCE_LAUNCH``; an abandoned or timed-out launch terminates
the instance; a termination let go on (or timed out, whose default is CONTINUE) ends the
instance, notifies ``EC2_INSTANCE_TERMINATE`` and tells the lab to stop its daemons. An
in-service instance that someone reported ``Unhealthy`` (``SetInstanceHealth``, as Phoenix's
engines do for a master that stopped serving) is replaced as AWS replaces it: the group
terminates it (through its terminate hook) and launches another in its place, and the lab is
told to boot the new one. The simulator also plays the group's EC2 health check: an instance
none of whose processes is alive (the lab says which) is found impaired after
``ec2_check_delay`` and marked Unhealthy, as AWS marks an instance that failed its status
checks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phoenix_lab import messages
from phoenix_lab.emulator import Emulator
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.stack import Compute, Stack, client, provision_compute

log = logging.getLogger(__name__)

# The hooks' names, as cfn/phoenix-compute.yaml declares them.
LAUNCH_HOOK = "phoenix-launch"
TERMINATE_HOOK = "phoenix-terminate"
ROLES = ("master", "minion")
# The minions' group's MaxSize here: room for every minion a test or the soak adds.
MINION_MAX_SIZE = 20


@dataclass
class Instance:
    """One instance of a simulated group, as the simulator follows it."""

    instance_id: str
    role: str
    group: str
    zone: str
    # pending (launch action open), in_service, terminating (terminate action open),
    # terminated, abandoned (its launch was abandoned or timed out)
    state: str = "pending"
    launch_token: str = ""
    terminate_token: str = ""


class Fleet:
    """The cluster's two AutoScaling groups in the emulator, and what AWS would say of them."""

    def __init__(
        self,
        emulator: Emulator,
        stack: Stack,
        actions: LifecycleActions,
        heartbeat_timeout: float = 300.0,
        on_terminated: Callable[[Instance], None] | None = None,
        pump_interval: float = 0.25,
        on_launched: Callable[[Instance], None] | None = None,
        alive: Callable[[Instance], bool] | None = None,
        ec2_check_delay: float = 10.0,
    ) -> None:
        """``on_terminated``: an instance ended, stop its daemons. ``on_launched``: the group
        launched an instance by itself (in place of an unhealthy one), boot it. ``alive``:
        whether any process of an in-service instance still runs (None: no EC2 check)."""
        self.emulator = emulator
        self.stack = stack
        self.actions = actions
        self.heartbeat_timeout = heartbeat_timeout
        self.on_terminated = on_terminated
        self.on_launched = on_launched
        self.alive = alive
        self.ec2_check_delay = ec2_check_delay
        # Instances replaced because they were Unhealthy, in order, and those the EC2 check
        # (not someone's report) found so.
        self.replaced_unhealthy: list[str] = []
        self.failed_ec2_check: list[str] = []
        # Each of those: the instance the group launched in its place.
        self.replacements: dict[str, str] = {}
        self._dead_since: dict[str, float] = {}
        # When each step of an instance's life happened here (time.monotonic()), by instance
        # id, then step: launching and terminating (its hook message sent), in_service,
        # terminated, ec2_check_failed, replaced_unhealthy (AutoScaling acted on its
        # Unhealthy status). bench/replacement times a replacement's parts from them.
        self.moments: dict[str, dict[str, float]] = {}
        self.pump_interval = pump_interval
        self.instances: dict[str, Instance] = {}
        # Every message sent, as (what, instance id): the timeline of what AWS said.
        self.sent: list[tuple[str, str]] = []
        self.compute: Compute | None = None
        self._autoscaling = client(emulator, "autoscaling")
        self._sns = client(emulator, "sns")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def group(self, role: str) -> str:
        """The group's name, as the data stack tells the engine (its outputs)."""
        return self.stack.outputs["MastersGroupName" if role == "master" else "MinionsGroupName"]

    def create_groups(self, masters: int) -> Compute:
        """Deploys the network and compute stacks on the data stack (lab/phoenix_lab/stack.py,
        ``provision_compute``): the two groups, their launch templates, instance roles and
        hooks are the compute template's. The masters' group launches ``masters`` instances
        at once, as AWS launches a new group's desired capacity, each waiting in its launch
        hook, its message sent (``launching``); the minions' group starts empty."""
        self.compute = provision_compute(
            self.emulator,
            self.stack,
            MasterCount=str(masters),
            MinionMinSize="0",
            MinionDesiredCapacity="0",
            MinionMaxSize=str(MINION_MAX_SIZE),
            HeartbeatTimeout=str(int(self.heartbeat_timeout)),
        )
        with self._lock:
            self._launched("master", set())
        return self.compute

    def launching(self, role: str) -> list[Instance]:
        """The group's instances waiting in their launch hook."""
        with self._lock:
            return [i for i in self.instances.values() if i.role == role and i.state == "pending"]

    # ----- what the operator (or AutoScaling itself) does to the groups -----------------------

    def scale(self, role: str, desired: int) -> list[Instance]:
        """``SetDesiredCapacity``: the instances the group launched (each waiting in its
        launch hook, its message sent) or, scaling in, none (use ``scale_in`` to choose)."""
        with self._lock:
            before = self._group_instances(role)
            self._autoscaling.set_desired_capacity(
                AutoScalingGroupName=self.group(role), DesiredCapacity=desired
            )
            return self._launched(role, before)

    def replace(self, instance_id: str) -> Instance:
        """The group's health check found ``instance_id`` impaired: it terminates it and
        launches a replacement (``TerminateInstanceInAutoScalingGroup`` without decrement).
        Returns the replacement, waiting in its launch hook."""
        with self._lock:
            old = self.instances[instance_id]
            before = self._group_instances(old.role)
            self._terminate(old, decrement=False)
            (new,) = self._launched(old.role, before)
            return new

    def scale_in(self, instance_id: str) -> Instance:
        """The group removes ``instance_id`` (``TerminateInstanceInAutoScalingGroup`` with
        decrement): it waits in its terminate hook."""
        with self._lock:
            instance = self.instances[instance_id]
            self._terminate(instance, decrement=True)
            return instance

    def in_service(self, role: str) -> list[Instance]:
        with self._lock:
            return [
                i for i in self.instances.values() if i.role == role and i.state == "in_service"
            ]

    # ----- AutoScaling's side ---------------------------------------------------------------------

    def _described(self, role: str) -> list[dict[str, Any]]:
        """The group's instances as AutoScaling describes them."""
        (group,) = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group(role)]
        )["AutoScalingGroups"]
        instances: list[dict[str, Any]] = group["Instances"]
        return instances

    def _group_instances(self, role: str) -> set[str]:
        return {i["InstanceId"] for i in self._described(role)}

    def _launched(self, role: str, before: set[str]) -> list[Instance]:
        """The instances the group launched since ``before``: each gets a pending launch
        action and its hook message."""
        launched = []
        for found in self._described(role):
            if found["InstanceId"] in before:
                continue
            instance = Instance(
                found["InstanceId"], role, self.group(role), found["AvailabilityZone"]
            )
            action = self.actions.begin(
                instance.group,
                LAUNCH_HOOK,
                instance.instance_id,
                self._hook_spec(instance.group, LAUNCH_HOOK)["HeartbeatTimeout"],
            )
            instance.launch_token = action.token
            self.instances[instance.instance_id] = instance
            self._hook(instance, messages.LAUNCHING, action.token)
            launched.append(instance)
        return launched

    def _terminate(self, instance: Instance, decrement: bool) -> None:
        self._autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance.instance_id, ShouldDecrementDesiredCapacity=decrement
        )
        action = self.actions.begin(
            instance.group,
            TERMINATE_HOOK,
            instance.instance_id,
            self._hook_spec(instance.group, TERMINATE_HOOK)["HeartbeatTimeout"],
        )
        instance.state, instance.terminate_token = "terminating", action.token
        self._hook(instance, messages.TERMINATING, action.token)

    def _hook(self, instance: Instance, transition: str, token: str) -> None:
        hook = LAUNCH_HOOK if transition == messages.LAUNCHING else TERMINATE_HOOK
        body = messages.lifecycle_hook(
            transition,
            instance.instance_id,
            instance.group,
            token,
            hook,
            messages.aws_time(),
            self._hook_spec(instance.group, hook)["NotificationMetadata"],
        )
        self.stack.send(self.emulator, body)
        self.sent.append((transition, instance.instance_id))
        self._mark(instance, "launching" if hook == LAUNCH_HOOK else "terminating")

    def _hook_spec(self, group: str, hook: str) -> dict[str, Any]:
        """The compute template's ``hook`` of ``group``, as the lab resolved it (the emulator
        keeps no hook's metadata or target)."""
        assert self.compute is not None, "create_groups first"
        (spec,) = (h for h in self.compute.hooks[group] if h["LifecycleHookName"] == hook)
        return spec

    def _mark(self, instance: Instance, step: str) -> None:
        """Records when ``step`` of ``instance`` happened (the first time only)."""
        self.moments.setdefault(instance.instance_id, {}).setdefault(step, time.monotonic())

    def _notify(self, instance: Instance, event: str) -> None:
        """An AutoScaling notification, published to the stack's topic."""
        body = messages.asg_notification(
            event, instance.instance_id, instance.group, messages.aws_time(), instance.zone
        )
        kind = event.rsplit(":", 1)[-1].replace("EC2_INSTANCE_", "").lower()
        self._sns.publish(
            TopicArn=self.stack.outputs["TopicArn"],
            Subject=f'Auto Scaling: {kind} for group "{instance.group}"',
            Message=json.dumps(body),
        )
        self.sent.append((event, instance.instance_id))

    def pump(self) -> None:
        """One pass over the open lifecycle actions, what AWS does once each one ends, and
        the replacement of instances reported unhealthy."""
        with self._lock:
            self._ec2_check()
            self._replace_unhealthy()
            for instance in list(self.instances.values()):
                if instance.state == "pending":
                    action = self.actions.get(instance.launch_token)
                    if action.status == "completed":
                        instance.state = "in_service"
                        self._mark(instance, "in_service")
                        self._notify(instance, messages.LAUNCH)
                    elif action.status in {"abandoned", "timed_out"}:
                        # The launch hook's default is ABANDON: the group ends the instance
                        # and launches another in its place, which waits in its own hook.
                        log.warning("launch of %s %s", instance.instance_id, action.status)
                        instance.state = "abandoned"
                        self._notify(instance, messages.LAUNCH_ERROR)
                        before = self._group_instances(instance.role)
                        self._autoscaling.terminate_instance_in_auto_scaling_group(
                            InstanceId=instance.instance_id, ShouldDecrementDesiredCapacity=False
                        )
                        self._launched(instance.role, before)
                        self._end(instance)
                elif instance.state == "terminating":
                    action = self.actions.get(instance.terminate_token)
                    if action.status != "pending":
                        # Completed either way, or timed out: the default is CONTINUE.
                        instance.state = "terminated"
                        self._mark(instance, "terminated")
                        self._notify(instance, messages.TERMINATE)
                        self._end(instance)

    def _ec2_check(self) -> None:
        """The group's EC2 health check: an in-service instance with no process left is
        marked Unhealthy once it has been so for ``ec2_check_delay``."""
        if self.alive is None:
            return
        now = time.monotonic()
        for instance in list(self.instances.values()):
            if instance.state != "in_service" or instance.instance_id in self.failed_ec2_check:
                continue
            if self.alive(instance):
                self._dead_since.pop(instance.instance_id, None)
                continue
            since = self._dead_since.setdefault(instance.instance_id, now)
            if now - since >= self.ec2_check_delay:
                log.warning("%s failed its EC2 health check", instance.instance_id)
                self.failed_ec2_check.append(instance.instance_id)
                self._autoscaling.set_instance_health(
                    InstanceId=instance.instance_id, HealthStatus="Unhealthy"
                )
                self._mark(instance, "ec2_check_failed")

    def _replace_unhealthy(self) -> None:
        """AutoScaling replaces an in-service instance whose health status is Unhealthy: it
        is terminated through its hook and another is launched in its place (the group keeps
        its size)."""
        for role in ROLES:
            for found in self._described(role):
                instance = self.instances.get(found["InstanceId"])
                if (
                    instance is None
                    or instance.state != "in_service"
                    or found.get("HealthStatus") != "Unhealthy"
                ):
                    continue
                log.warning("%s %s is Unhealthy: replacing it", role, instance.instance_id)
                self.replaced_unhealthy.append(instance.instance_id)
                self._mark(instance, "replaced_unhealthy")
                new = self.replace(instance.instance_id)
                self.replacements[instance.instance_id] = new.instance_id
                if self.on_launched is not None:
                    # The new instance boots by itself, as its user data would: the
                    # simulator goes on meanwhile (the old one's termination among others).
                    threading.Thread(
                        target=self._boot, args=(new,), name=f"boot-{new.instance_id}", daemon=True
                    ).start()

    def _boot(self, instance: Instance) -> None:
        assert self.on_launched is not None
        try:
            self.on_launched(instance)
        except Exception:  # a failed boot is the instance's trouble, not the simulator's
            log.exception("booting %s failed", instance.instance_id)

    def _end(self, instance: Instance) -> None:
        if self.on_terminated is not None:
            try:
                self.on_terminated(instance)
            except Exception:  # the lab's callback must not stop the simulator
                log.exception("stopping %s failed", instance.instance_id)

    def start(self) -> None:
        """Pumps in a background thread until ``stop``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.pump_interval):
            try:
                self.pump()
            except Exception:  # an emulator hiccup: the next pass tries again
                log.exception("fleet simulator pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def describe(self) -> dict[str, Any]:
        """The groups as the emulator has them: role -> desired capacity and instance ids."""
        groups = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group(role) for role in ROLES]
        )["AutoScalingGroups"]
        return {
            g["AutoScalingGroupName"]: {
                "desired": g["DesiredCapacity"],
                "instances": sorted(i["InstanceId"] for i in g["Instances"]),
            }
            for g in groups
        }
