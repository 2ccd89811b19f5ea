"""A failed login on the simulator is what it is on Harbor: an anonymous request, not a 401.

Harbor's security middleware (``src/server/middleware/security/basic_auth.go``, ``robot.go``)
lets a request whose Basic credentials fail go on without a user; each endpoint then answers as
it answers anonymous callers. ``core/auth/authenticator.go`` also locks the user name for
``frozenTime`` (1.5 s) after a failure, and the failing request sleeps that long.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from daemon.sim import SimOptions
from daemon.sim.auth import FROZEN_SECONDS


def api(sim: Any, auth: Any) -> httpx.Client:
    return httpx.Client(base_url=sim.url + "/api/v2.0", auth=auth, timeout=30,
                        headers={"X-Is-Resource-Name": "true"})


@pytest.fixture
def world(make_sim: Any) -> Any:
    """Three projects, the first one public; a short lock so that the tests need not wait."""
    sim = make_sim(seed=3, projects=3, repositories_per_project=1, artifacts_per_repository=2,
                   index_share=0.0, chart_share=0.0, login_freeze=0.2)
    public, *private = list(sim.robots)
    sim.control.set_project(public, public=True)
    return sim, public, private


def test_its_lock_lasts_as_long_as_harbors() -> None:
    assert SimOptions().login_freeze == FROZEN_SECONDS == 1.5


@pytest.mark.parametrize("auth", [("admin", "wrong"), ("robot$library+scanwatch", "wrong"),
                                  None], ids=["wrong-password", "wrong-robot-secret", "none"])
def test_a_failed_login_sees_what_anonymous_sees(world: Any, auth: Any) -> None:
    sim, public, private = world
    with api(sim, auth) as c:
        info = c.get("/systeminfo")
        projects = c.get("/projects")
        codes = {p: c.get(f"/projects/{p}/artifacts").status_code for p in [public, *private]}
        scanners = c.get("/scanners").status_code
        me = c.get("/users/current").status_code
        allowlist = c.get("/system/CVEAllowlist").status_code
    assert info.status_code == 200 and "harbor_version" not in info.json()
    assert info.json()["auth_mode"] == "db_auth"
    assert projects.status_code == 200
    assert [p["name"] for p in projects.json()] == [public]
    assert projects.headers["X-Total-Count"] == "1"
    assert codes == {public: 200, **{p: 401 for p in private}}
    assert (scanners, me, allowlist) == (401, 401, 401)


def test_a_right_login_sees_everything(world: Any) -> None:
    sim, public, private = world
    with api(sim, sim.admin) as c:
        assert c.get("/systeminfo").json()["harbor_version"].startswith("v2.14.0")
        assert sorted(p["name"] for p in c.get("/projects").json()) == sorted([public, *private])
        assert c.get("/users/current").json()["username"] == "admin"
    robot = sim.robots[private[0]]
    with api(sim, robot) as c:
        assert c.get("/systeminfo").json()["harbor_version"]
        assert sorted(p["name"] for p in c.get("/projects").json()) == sorted([public, private[0]])
        assert c.get(f"/projects/{private[1]}/artifacts").status_code == 403
        assert c.get("/users/current").status_code == 412  # no local user behind a robot


def test_anonymous_callers_cannot_scan_even_in_a_public_project(world: Any) -> None:
    sim, public, _ = world
    with api(sim, sim.admin) as c:
        art = c.get(f"/projects/{public}/artifacts").json()[0]
    short = art["repository_name"].split("/", 1)[1].replace("/", "%252F")
    with api(sim, None) as c:
        response = c.post(f"/projects/{public}/repositories/{short}/artifacts/{art['digest']}"
                          "/scan", json={"scan_type": "vulnerability"})
    assert response.status_code == 401


@pytest.mark.parametrize("how", ["expired", "disabled"])
def test_an_expired_or_disabled_robot_is_anonymous(world: Any, how: str) -> None:
    sim, public, private = world
    robot = sim.robots[private[0]]
    with api(sim, robot) as c:
        assert c.get(f"/projects/{private[0]}/artifacts").status_code == 200
    httpx.post(sim.url + "/_sim/robot", json={"project": private[0], how: True}).raise_for_status()
    with api(sim, robot) as c:
        assert "harbor_version" not in c.get("/systeminfo").json()
        assert [p["name"] for p in c.get("/projects").json()] == [public]
        assert c.get(f"/projects/{private[0]}/artifacts").status_code == 401
    sim.control.set_robot(private[0], expired=False, disabled=False)
    with api(sim, robot) as c:
        assert c.get(f"/projects/{private[0]}/artifacts").status_code == 200


def test_a_failed_login_locks_the_user_name_but_not_a_robot(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=3, projects=1, repositories_per_project=1, artifacts_per_repository=1,
                   login_freeze=3.0)
    robot = sim.robots[next(iter(sim.robots))]
    failing = threading.Thread(target=lambda: api(sim, ("admin", "wrong")).get("/systeminfo"))
    failing.start()  # Harbor locks "admin", then this request sleeps the freeze
    kit.wait_for(lambda: httpx.get(sim.url + "/_sim/auth").json()["locked"] == ["admin"])
    with api(sim, sim.admin) as c:
        locked = c.get("/systeminfo").json()
    with api(sim, robot) as c:
        robot_info = c.get("/systeminfo").json()
    failing.join()
    assert "harbor_version" not in locked  # the right password, but the name is locked
    assert robot_info["harbor_version"]  # robots authenticate before the lock is consulted
    kit.wait_for(lambda: "harbor_version" in api(sim, sim.admin).get("/systeminfo").json())
    assert sim.control.auth() == {"locked": []}


def test_it_deletes_an_artifact_as_harbor_does(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=5, projects=1, repositories_per_project=2, artifacts_per_repository=3,
                   index_share=0.5, chart_share=0.0)
    with kit.client(sim) as c:
        project = next(iter(sim.robots))
        arts = kit.all_artifacts(c, project)
        index = next(a for a in arts if a["references"])
        child = index["references"][0]["child_digest"]
        repo = index["repository_name"]
        child_path = kit.art_path(project, repo, child)
        assert c.delete(child_path).status_code == 412  # an index still references it
        path = kit.art_path(project, repo, index["digest"])
        assert c.delete(path).status_code == 200
        assert c.get(path).status_code == 404
        assert c.get(child_path).status_code == 404  # its untagged children went with it
        left = kit.all_artifacts(c, project)
        assert len(left) == len(arts) - 1
        pushed = sim.control.push(project, repo)
        assert pushed["digest"] not in {a["digest"] for a in arts}
    with kit.client(sim, None) as anonymous:
        assert anonymous.delete(kit.art_path(project, repo, pushed["digest"])).status_code == 401
