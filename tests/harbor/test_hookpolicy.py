"""What `webhook setup` decides per project (pure): create, update with the reasons, or none."""

from __future__ import annotations

import pytest

from daemon.harbor import hookpolicy
from daemon.harbor.hookpolicy import EVENT_TYPES, Policy, Target

URL = "https://scanwatch.example.test/hooks/harbor/prod"
SECRET = "Bearer k-1"


def ours(**changes: object) -> Policy:
    base = {"id": 7, "name": "scanwatch", "enabled": True, "event_types": EVENT_TYPES,
            "targets": (Target(URL, SECRET, False),)}
    return Policy(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("policies", "action", "changes"), [
    pytest.param([], "create", ("no scanwatch policy",), id="none-yet"),
    pytest.param([ours()], "none", (), id="as-wanted"),
    pytest.param([ours(enabled=False)], "update", ("disabled",), id="disabled"),
    pytest.param([ours(event_types=("PUSH_ARTIFACT",))], "update",
                 ("events missing: SCANNING_COMPLETED, SCANNING_FAILED, SCANNING_STOPPED",),
                 id="events-missing"),
    pytest.param([ours(targets=(Target(URL, "Bearer old", False),))], "update",
                 ("secret differs",), id="secret-rotated"),
    pytest.param([ours(targets=(Target(URL + "x", SECRET, False),))], "update",
                 ("address differs",), id="address-moved"),
    pytest.param([ours(name="by-hand")], "update", ("named 'by-hand'",), id="same-url-by-hand"),
    pytest.param([ours(name="other", targets=(Target("https://ci.example.test/", "", False),))],
                 "create", ("no scanwatch policy",), id="someone-elses-policy"),
])
def test_it_plans_only_what_differs(policies: list[Policy], action: str,
                                    changes: tuple[str, ...]) -> None:
    plan = hookpolicy.plan("payments", policies, URL, SECRET)
    assert (plan.action, plan.changes) == (action, changes)
    assert plan.policy_id == (0 if action == "create" else 7)


def test_a_policy_body_from_harbor_reads_back_as_planned() -> None:
    body = {"id": 3, "name": "scanwatch", "enabled": True, "project_id": 1,
            "event_types": list(EVENT_TYPES),
            "targets": [{"type": "http", "address": URL, "auth_header": SECRET,
                         "skip_cert_verify": False}]}
    assert hookpolicy.plan("p", [hookpolicy.policy(body)], URL, SECRET).action == "none"
    wanted = hookpolicy.wanted_body(URL, SECRET)
    assert hookpolicy.plan("p", [hookpolicy.policy({**wanted, "id": 1})], URL,
                           SECRET).action == "none"
