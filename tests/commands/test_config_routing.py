"""`scanwatch config check` shows the routing tree and warns on the shadowed-route case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))


def test_config_check_prints_the_routes_and_warns_when_one_shadows_another(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f"""\
[daemon]
database = "sqlite:///{tmp_path / 'h.db'}"

[[registry]]
name = "prod"
url = "https://harbor.example.com"
username = "robot"
password = "pw"

[[receiver]]
name = "chat"
urls = ["json://127.0.0.1:9/chat"]

[[receiver]]
name = "mail"
urls = ["mailto://127.0.0.1:9?from=a@example.org&to=b@example.org"]

[[receiver]]
name = "spare"
urls = ["json://127.0.0.1:9/spare"]

[[route]]
name = "urgent"
receivers = ["chat"]
min_severity = "High"

[[route]]
receivers = ["mail"]
min_severity = "Medium"
""")
    done = subprocess.run([SCANWATCH, "config", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "never receives new" in done.stderr and "at High and above" in done.stderr
    assert "the earlier route[urgent] (without continue) takes them first" in done.stderr
    assert "receiver[spare]: no route sends to it" in done.stderr
    tree = done.stdout.split("Routing (first match wins unless continue):\n", 1)[1]
    first, second = tree.splitlines()[:2]
    assert first.startswith("  1. urgent: */*/* severity >= High") and "-> chat" in first
    assert "stops here" in first
    assert second.startswith("  2. route-") and "severity >= Medium" in second
    assert "-> mail" in second
