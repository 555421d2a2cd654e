"""Each config check catches its violation (fixtures here), and the README section renders."""

from __future__ import annotations

from dataclasses import dataclass

from libs.config.settings import setting
from tools.lint import config_catalog
from tools.lint.config_catalog import Process, ToolVariable


@dataclass(frozen=True)
class DemoConfig:
    metrics_port: int = setting("SYNCBRIDGE_DEMO_METRICS_PORT", 9102)
    relay_metrics_port: int = setting("SYNCBRIDGE_DEMO_RELAY_METRICS_PORT", 9103)


DEMO = Process("demo", DemoConfig, "services/demo", ("demo --help",))

# The relay before the fix of issue 19: it served on core's port and never read its own.
RELAY_BEFORE = """
def main() -> int:
    config = load_config(DemoConfig, os.environ)
    metrics = serve(registry, config.grpc_host, config.metrics_port)
"""
RELAY_AFTER = RELAY_BEFORE.replace("config.metrics_port", "config.relay_metrics_port")


def test_a_field_no_code_reads_is_reported() -> None:
    sources = {"services/demo/relay_main.py": RELAY_BEFORE}
    (problem,) = config_catalog.unread_fields([DEMO], sources)
    assert problem.startswith("SYNCBRIDGE_DEMO_RELAY_METRICS_PORT (DemoConfig.relay_metrics_port)")


def test_reads_count_only_in_the_package_outside_config_and_tests() -> None:
    both = RELAY_AFTER + "    config.metrics_port\n"
    assert config_catalog.unread_fields([DEMO], {"services/demo/relay_main.py": both}) == []
    elsewhere = {
        "services/other/main.py": both,  # another package
        "services/demo/config.py": both,  # the declaration itself
        "services/demo/relay_test.py": both,  # a test
        "services/demo/harness.py": both,  # a test helper
    }
    assert len(config_catalog.unread_fields([DEMO], elsewhere)) == 2
    # A keyword argument sets a field, it does not read it.
    written = {"services/demo/main.py": "replace(config, metrics_port=0, relay_metrics_port=0)"}
    assert len(config_catalog.unread_fields([DEMO], written)) == 2


def test_a_documented_name_no_setting_defines_is_reported() -> None:
    known = {"SYNCBRIDGE_CORE_GRPC_PORT", "SYNCBRIDGE_CORE_RELAY_METRICS_PORT"}
    files = {
        "README.md": "set SYNCBRIDGE_CORE_GRPC_PORT, or SYNCBRIDGE_CORE_GRPC_PROT by mistake\n",
        "docs/a.md": "any SYNCBRIDGE_CORE_* one; SYNCBRIDGE_{CORE,EDGE}_X; SYNCBRIDGE_EDGE_*\n",
        "services/x/BUILD.bazel": 'env = {"SYNCBRIDGE_CORE_RELAY_METRICS_PORT": "0"}\n',
        "services/x/x_test.py": "SYNCBRIDGE_CORE_MADE_UP = 1  # tests make names up\n",
    }
    assert config_catalog.undefined_names(known, files) == [
        "README.md:1: SYNCBRIDGE_CORE_GRPC_PROT is no setting of any process",
        "docs/a.md:1: SYNCBRIDGE_EDGE_* matches no variable",
    ]


def test_a_tool_variable_its_reader_does_not_name_is_reported() -> None:
    tool = ToolVariable("SYNCBRIDGE_STATE_DIR", "tools/servers/servers.py", "/x", "state")
    read = {"tools/servers/servers.py": 'environ.get("SYNCBRIDGE_STATE_DIR", ...)'}
    assert config_catalog.unread_tool_variables([tool], read) == []
    renamed = {"tools/servers/servers.py": 'environ.get("SYNCBRIDGE_STATE", ...)'}
    assert len(config_catalog.unread_tool_variables([tool], renamed)) == 1


def test_the_section_lists_every_variable_once() -> None:
    section = config_catalog.render_section()
    assert section.startswith(config_catalog.BEGIN) and section.endswith(config_catalog.END + "\n")
    for name in config_catalog.known_variables():
        assert section.count(f"| `{name}` |") == 1, name
    assert "| `SYNCBRIDGE_CORE_RELAY_METRICS_PORT` | `9103` |" in section
    assert "| `SYNCBRIDGE_DEV_JWT_DIR` | `~/.config/syncbridge/dev-jwt` |" in section


def test_a_stale_or_missing_readme_section_is_reported() -> None:
    current = "# X\n\n" + config_catalog.render_section() + "\nmore\n"
    assert config_catalog.stale_readme(current) == []
    stale = current.replace("`9103`", "`9102`", 1)
    assert "stale" in config_catalog.stale_readme(stale)[0]
    assert "no configuration section" in config_catalog.stale_readme("# X\n")[0]
