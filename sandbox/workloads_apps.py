"""The Deployment and ReplicaSet controllers of the sandbox (kube-controller-manager's).

ragbot deletes Deployments and waits for Velero to bring them back; what it then
watches is what these controllers produce in a real cluster: a ReplicaSet per pod
template named `<deployment>-<pod-template-hash>`, pods `<replicaset>-<5 chars>`
owned by it, and statuses that count ready and available replicas. Each reconcile
reads the current objects by name and converges them, so it can run any number of
times, in any order, after any event (level-triggered, like the real controllers).

Simplifications (listed in the README): a new template scales the old ReplicaSets to
0 at once instead of rolling (maxSurge/maxUnavailable only feed the Available
condition), minReadySeconds counts as 0, orphaned pods are not adopted.
"""

from __future__ import annotations

from collections.abc import Callable

from .apiserver.objects import clone, generate_name
from .workloads_kube import (
    NODE_NAME,
    Kube,
    Obj,
    condition,
    int_or_percent,
    merge_condition,
    owner_reference,
    pod_ready,
    template_hash,
)

Enqueue = Callable[[tuple[str, str, str]], None]
_REVISION = "deployment.kubernetes.io/revision"
_HASH = "pod-template-hash"


def pod_from_template(template: Obj, namespace: str, owner: Obj, labels: Obj) -> Obj:
    """A pod as a workload controller creates it, already bound to the sandbox node.

    The real scheduler binds in a second step; binding at creation saves a write per
    pod and is indistinguishable to clients that wait for readiness.
    """
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = clone(tmeta["annotations"])
    spec = clone(template.get("spec") or {})
    spec["nodeName"] = NODE_NAME
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _revision(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(_REVISION, "0"))
    except ValueError:
        return 0


class DeploymentController:
    """Deployment → ReplicaSet for the current template, scaled; status from the sets."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def reconcile(self, namespace: str, name: str) -> float | None:
        k = self.kube.kinds
        deploy = self.kube.get(k.deployments, namespace, name)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return None  # the store garbage-collects its ReplicaSets and pods
        spec = deploy.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        owned = self.kube.owned(k.replicasets, deploy)
        owned += self.kube.adopt(k.replicasets, deploy, k.deployments)
        rs_name = f"{name}-{template_hash(spec.get('template') or {})}"
        new_rs = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        if new_rs is None and spec.get("paused"):
            self._write_status(deploy, None, replicas)  # a paused rollout does not start
            return None
        if new_rs is None:
            new_rs = self._new_replicaset(deploy, rs_name, owned)
            if new_rs is None:
                return None
            owned.append(new_rs)
        else:
            new_rs = self._newest_revision(new_rs, owned)
        for rs in owned:
            want = replicas if rs["metadata"]["name"] == rs_name else 0
            if int((rs.get("spec") or {}).get("replicas", 1)) != want:
                self._scale(rs, want, replicas)
        self._prune_history(deploy, owned, new_rs)
        revision = str(_revision(new_rs))
        if _revision(deploy) != int(revision):

            def annotate(obj: Obj) -> None:
                obj["metadata"].setdefault("annotations", {})[_REVISION] = revision

            self.kube.update(k.deployments, deploy, annotate)
        self._write_status(deploy, new_rs, replicas)
        return None

    def _newest_revision(self, new_rs: Obj, owned: list[Obj]) -> Obj:
        """A rollback reuses an old set: it becomes the newest revision again, as in k8s."""
        top = max((_revision(rs) for rs in owned if rs is not new_rs), default=0)
        if _revision(new_rs) > top:
            return new_rs

        def bump(obj: Obj) -> None:
            obj["metadata"].setdefault("annotations", {})[_REVISION] = str(top + 1)

        return self.kube.update(self.kube.kinds.replicasets, new_rs, bump) or new_rs

    def _new_replicaset(self, deploy: Obj, rs_name: str, owned: list[Obj]) -> Obj | None:
        k = self.kube.kinds
        ns = deploy["metadata"]["namespace"]
        if self.kube.get(k.replicasets, ns, rs_name) is not None:
            return None  # another owner's set of that name (orphans were adopted above)
        spec = deploy.get("spec") or {}
        pod_hash = rs_name.rsplit("-", 1)[1]
        template = clone(spec.get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), _HASH: pod_hash}
        selector = clone(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), _HASH: pod_hash}
        replicas = int(spec.get("replicas", 1))
        surge = int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%"),
            replicas,
            round_up=True,
        )
        revision = max((_revision(rs) for rs in owned), default=0) + 1
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": dict(tmeta["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                    _REVISION: str(revision),
                },
                "ownerReferences": [owner_reference(deploy)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }
        if spec.get("minReadySeconds"):
            body["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        return self.kube.create_owned(k.replicasets, body, k.deployments, deploy)

    def _scale(self, rs: Obj, want: int, desired: int) -> None:
        def scale(obj: Obj) -> None:
            obj["spec"]["replicas"] = want
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)

        self.kube.update(self.kube.kinds.replicasets, rs, scale)

    def _prune_history(self, deploy: Obj, owned: list[Obj], new_rs: Obj) -> None:
        """Delete drained old sets beyond spec.revisionHistoryLimit (default 10)."""
        limit = int((deploy.get("spec") or {}).get("revisionHistoryLimit", 10))
        drained = [
            rs
            for rs in owned
            if rs["metadata"]["name"] != new_rs["metadata"]["name"]
            and int((rs.get("spec") or {}).get("replicas", 1)) == 0
            and not (rs.get("status") or {}).get("replicas")
        ]
        drained.sort(key=_revision)
        for rs in drained[: max(len(drained) - limit, 0)]:
            self.kube.delete(self.kube.kinds.replicasets, rs)

    def _write_status(self, deploy: Obj, new_rs: Obj | None, replicas: int) -> None:
        k = self.kube.kinds
        sets = self.kube.owned(k.replicasets, deploy)
        new_name = new_rs["metadata"]["name"] if new_rs else None
        new = next((rs for rs in sets if rs["metadata"]["name"] == new_name), None)

        def total(field: str, items: list[Obj]) -> int:
            return sum(int((rs.get("status") or {}).get(field) or 0) for rs in items)

        spec = deploy.get("spec") or {}
        available = total("availableReplicas", sets)
        spec_total = sum(int((rs.get("spec") or {}).get("replicas", 1)) for rs in sets)
        updated = total("replicas", [new] if new else [])
        unavailable_ok = int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
            replicas,
            round_up=False,
        )
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            unavailable_ok = 0
        old = deploy.get("status") or {}
        now = self.kube.now()
        is_available = available >= replicas - unavailable_ok
        rs_name = new["metadata"]["name"] if new else ""
        complete = (
            new is not None
            and updated == replicas
            and total("availableReplicas", [new]) == replicas
            and total("replicas", sets) == replicas
        )
        if complete:
            progressing = ("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        else:
            progressing = ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conditions = [
            merge_condition(
                condition(deploy, "Available"),
                {
                    "type": "Available",
                    "status": "True" if is_available else "False",
                    "reason": "MinimumReplicasAvailable"
                    if is_available
                    else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if is_available
                    else "Deployment does not have minimum availability.",
                },
                now,
                update_time=True,
            ),
            merge_condition(
                condition(deploy, "Progressing"),
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": progressing[0],
                    "message": progressing[1],
                },
                now,
                update_time=True,
            ),
        ]
        status: Obj = {"observedGeneration": deploy["metadata"].get("generation", 1)}
        # DeploymentStatus fields are omitempty: zero counts are absent on the wire.
        for field, value in (
            ("replicas", total("replicas", sets)),
            ("updatedReplicas", updated),
            ("readyReplicas", total("readyReplicas", sets)),
            ("availableReplicas", available),
            ("unavailableReplicas", max(spec_total - available, 0)),
        ):
            if value:
                status[field] = value
        status["conditions"] = conditions
        if "collisionCount" in old:
            status["collisionCount"] = old["collisionCount"]
        self.kube.write_status(k.deployments, deploy, status)


class ReplicaSetController:
    """ReplicaSet → exactly spec.replicas live pods; status counts them."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def reconcile(self, namespace: str, name: str) -> float | None:
        k = self.kube.kinds
        rs = self.kube.get(k.replicasets, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = self.kube.owned(k.pods, rs, spec.get("selector"))
        pods += self.kube.adopt(k.pods, rs, k.replicasets)
        if len(pods) < want:
            template = spec.get("template") or {}
            labels = clone((template.get("metadata") or {}).get("labels") or {})
            for _ in range(want - len(pods)):
                body = pod_from_template(template, namespace, rs, clone(labels))
                body["metadata"]["generateName"] = f"{name}-"
                if not self._create_pod(rs, body):
                    return None  # the set is gone: nothing to do
        elif len(pods) > want:
            for pod in _deletion_order(pods)[: len(pods) - want]:
                self.kube.delete(k.pods, pod)
        self._write_status(rs)
        return None

    def _create_pod(self, rs: Obj, body: Obj) -> bool:
        """Create one pod with a fresh random suffix; False if the set is gone."""
        k = self.kube.kinds
        for _ in range(5):
            body["metadata"]["name"] = generate_name(body["metadata"]["generateName"])
            if self.kube.get(k.pods, body["metadata"]["namespace"], body["metadata"]["name"]):
                continue
            return self.kube.create_owned(k.pods, body, k.replicasets, rs) is not None
        raise RuntimeError(f"no free pod name for {body['metadata']['generateName']}")

    def _write_status(self, rs: Obj) -> None:
        k = self.kube.kinds
        spec = rs.get("spec") or {}
        pods = self.kube.owned(k.pods, rs, spec.get("selector"))
        tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = sum(1 for p in pods if pod_ready(p))
        labelled = sum(
            1
            for p in pods
            if all((p["metadata"].get("labels") or {}).get(a) == b for a, b in tlabels.items())
        )
        status: Obj = {"replicas": len(pods)}  # the one ReplicaSetStatus field always sent
        for field, value in (
            ("fullyLabeledReplicas", labelled),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("observedGeneration", rs["metadata"].get("generation", 1)),
        ):
            if value:
                status[field] = value
        self.kube.write_status(k.replicasets, rs, status)


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    """Pods to delete first when scaling down: not ready before ready, newest first."""
    by_age = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(by_age, key=pod_ready)  # stable: keeps newest-first within each group
