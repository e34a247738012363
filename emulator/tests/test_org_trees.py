"""The org-tree endpoints and the synthetic org's shape."""

from __future__ import annotations

import requests
from emu_helpers import AUTH
from sei_emulator import SEIEmulator


def test_default_org_has_the_page_examples_ids(shared_emulator):
    org = shared_emulator.org
    assert {1, 123, 456, 789} <= set(org.teams)
    assert len(org.teams) == 12
    assert org.root.ref_id == 1
    assert org.root.parent_ref_id is None
    depths = {t.depth for t in org.teams.values()}
    assert max(depths) in (3, 4)
    for team in org.teams.values():
        assert len(team.managers) == 1
        assert 3 <= len(team.contributors) <= 7
        for child in team.children:
            assert org.teams[child].parent_ref_id == team.ref_id


def test_org_trees_lists_the_tree(shared_emulator):
    r = requests.get(f"{shared_emulator.base_url}/v2/org-trees", headers=AUTH, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    trees = r.json()
    assert trees == [{"id": 1, "name": shared_emulator.org.root.name, "rootTeamRefId": 1}]


def test_org_tree_by_id(shared_emulator):
    r = requests.get(f"{shared_emulator.base_url}/v2/org-trees/1", headers=AUTH, timeout=10)
    assert r.json()["rootTeamRefId"] == 1


def test_org_tree_teams_lists_every_team(shared_emulator):
    r = requests.get(f"{shared_emulator.base_url}/v2/org-trees/1/teams", headers=AUTH, timeout=10)
    assert r.status_code == 200
    teams = r.json()
    assert len(teams) == 12
    assert teams[0] == {"refId": 1, "name": shared_emulator.org.root.name, "parentRefId": None}
    ids = {t["refId"] for t in teams}
    assert all(t["parentRefId"] in ids for t in teams[1:])
    assert all(isinstance(t["refId"], int) and isinstance(t["name"], str) for t in teams)


def test_unknown_org_tree_is_404(shared_emulator):
    for tree in ("2", "abc"):
        url = f"{shared_emulator.base_url}/v2/org-trees/{tree}/teams"
        r = requests.get(url, headers=AUTH, timeout=10)
        assert r.status_code == 404
        assert r.json()["status"] == "error"


def test_large_org_keeps_root_one_and_generated_ids():
    emu = SEIEmulator(port=0, teams=1000)
    org = emu.org
    assert len(org.teams) == 1000
    assert org.root.ref_id == 1
    assert {123, 456, 789, 1001, 1996} <= set(org.teams)
    assert max(t.depth for t in org.teams.values()) == 4
    assert len(list(org.subtree(1))) == 1000
