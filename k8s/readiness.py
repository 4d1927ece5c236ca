"""Is Enterprise RAG back? The playbook's readiness rule, as a pure function and a wait.

After Velero reports a restore done, the application still has to start. The playbook
(reference/enterprise-rag-backup.md, Restore step 7) checks every 60 s, up to 120
times, that in every application namespace:

- every container of every Running pod is ready;
- every pod not owned by a Job is Running or Succeeded;
- no namespace is missing or empty.

"Empty" means: no pods. A namespace of namespaceOrder whose backup held no pods (the
default list has `default`, which only holds the deployment-manifest ConfigMap) can
never fill up from the restore, so it is only required to exist and is skipped by the
emptiness rule; the plan names those namespaces. Pods already being deleted
(`deletionTimestamp` set, e.g. the old pods of an uninstalled release) are going away
and are not judged.

`evaluate` is the pure rule. `wait_ready` waits by watch, one namespace after another
(every event re-evaluates that namespace), then lists all of them once more and
re-evaluates the whole, because a namespace judged ready earlier can have changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .client import Cluster
from .errors import Timeout
from .resources import NAMESPACE, POD, list_all
from .watch import Collection, wait_for


@dataclass(frozen=True)
class NamespaceReadiness:
    namespace: str
    exists: bool
    pods: int
    ready_pods: int
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Readiness:
    namespaces: tuple[NamespaceReadiness, ...]

    @property
    def ready(self) -> bool:
        return all(n.ready for n in self.namespaces)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(p for n in self.namespaces for p in n.problems)

    def summary(self, total: int | None = None) -> str:
        """`5/8 namespaces ready: <first problems>`; `total` counts namespaces not judged yet."""
        done = sum(1 for n in self.namespaces if n.ready)
        text = f"{done}/{total or len(self.namespaces)} namespaces ready"
        if self.problems:
            more = len(self.problems) - 3
            text += ": " + "; ".join(self.problems[:3]) + (f"; and {more} more" if more > 0 else "")
        return text


def _owned_by_job(pod: Mapping[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Job" for r in refs)


def pod_problem(pod: Mapping[str, Any]) -> str | None:
    """Why this pod breaks the rule, or None."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Running":
        spec_names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        statuses = {c.get("name"): c for c in status.get("containerStatuses") or []}
        waiting = [n for n in spec_names if not (statuses.get(n) or {}).get("ready")]
        if waiting:
            return f"pod {name}: container {', '.join(str(w) for w in waiting)} not ready"
        return None
    if phase == "Succeeded" or _owned_by_job(pod):
        return None
    return f"pod {name} is {phase}"


def evaluate_namespace(
    namespace: str, exists: bool, pods: Iterable[Mapping[str, Any]], *, must_have_pods: bool
) -> NamespaceReadiness:
    """The rule for one namespace."""
    if not exists:
        return NamespaceReadiness(namespace, False, 0, 0, (f"namespace {namespace} is missing",))
    pods = list(pods)
    problems = [p for p in (pod_problem(pod) for pod in pods) if p]
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if must_have_pods and not live:
        problems.insert(0, f"namespace {namespace} has no pods")
    ready = sum(1 for p in live if pod_problem(p) is None)
    return NamespaceReadiness(namespace, True, len(live), ready, tuple(problems))


def evaluate(
    namespaces: Sequence[str],
    existing: Iterable[str],
    pods_by_namespace: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    skip_empty: Iterable[str] = (),
) -> Readiness:
    """The playbook's rule over `namespaces` (namespaces in `skip_empty` may have no pods)."""
    have = set(existing)
    lenient = set(skip_empty)
    return Readiness(tuple(
        evaluate_namespace(ns, ns in have, pods_by_namespace.get(ns, ()),
                           must_have_pods=ns not in lenient)
        for ns in namespaces
    ))  # fmt: skip


def check_ready(cluster: Cluster, namespaces: Sequence[str], skip_empty: Iterable[str] = ()) -> Readiness:
    """List namespaces and pods once and evaluate."""
    existing, _ = list_all(cluster, NAMESPACE, None)
    names = {str(n["metadata"]["name"]) for n in existing if not n["metadata"].get("deletionTimestamp")}
    pods = {ns: list_all(cluster, POD, ns)[0] for ns in namespaces if ns in names}
    return evaluate(namespaces, names, pods, skip_empty=skip_empty)


def wait_ready(
    cluster: Cluster,
    namespaces: Sequence[str],
    *,
    skip_empty: Iterable[str] = (),
    timeout: float,
    on_change: Callable[[Readiness, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Readiness:
    """Wait by watch until `evaluate` holds for every namespace; Timeout names what is not.

    on_change gets the verdicts so far and the number of namespaces to judge.
    """
    lenient = set(skip_empty)
    deadline = cluster.monotonic() + timeout
    state: dict[str, NamespaceReadiness] = {}
    everyone = list(namespaces)

    def report() -> None:
        if on_change is not None:
            on_change(Readiness(tuple(state[ns] for ns in everyone if ns in state)), len(everyone))

    while True:
        for ns in everyone:
            remaining = deadline - cluster.monotonic()
            if remaining <= 0:
                raise Timeout(f"application not ready after {timeout:.0f}s: "
                              f"{Readiness(tuple(state.values())).summary(len(everyone))}")  # fmt: skip
            _wait_namespace_exists(cluster, ns, remaining, stop)

            def judge(view: Collection, ns: str = ns) -> NamespaceReadiness | None:
                verdict = evaluate_namespace(ns, True, view.objects.values(),
                                             must_have_pods=ns not in lenient)  # fmt: skip
                state[ns] = verdict
                report()
                return verdict if verdict.ready else None

            try:
                wait_for(cluster, POD, ns, judge, timeout=deadline - cluster.monotonic(),
                         what=f"pods in {ns} to be ready", stop=stop)  # fmt: skip
            except Timeout:
                raise Timeout(f"application not ready after {timeout:.0f}s: "
                              f"{Readiness(tuple(state.values())).summary(len(everyone))}") from None  # fmt: skip
        final = check_ready(cluster, everyone, lenient)
        for verdict in final.namespaces:
            state[verdict.namespace] = verdict
        report()
        if final.ready:
            return final


def _wait_namespace_exists(
    cluster: Cluster, namespace: str, timeout: float, stop: Callable[[], bool] | None
) -> None:
    def present(view: Collection) -> bool | None:
        obj = view.get("", namespace)
        return True if obj is not None and not obj["metadata"].get("deletionTimestamp") else None

    try:
        wait_for(cluster, NAMESPACE, None, present, timeout=timeout,
                 what=f"namespace {namespace}", field_selector=f"metadata.name={namespace}",
                 stop=stop)  # fmt: skip
    except Timeout:
        raise Timeout(f"namespace {namespace} is missing") from None
