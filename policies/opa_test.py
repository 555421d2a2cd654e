"""The Rego under policies/: formatted, strictly compiled, tests passing, every line covered.

Also loads the whole directory the way the gitops validator does (`opa eval
-d policies`), so fixtures and the broken overlay can never break that load.
"""

import json

from policies import opa

# Each policy has at least its good-fixture, bad-fixture and exact-message tests.
POLICIES = 11
MIN_TESTS = 3 * POLICIES


def test_rego_is_formatted() -> None:
    result = opa.run("fmt", "--list", "--fail", str(opa.policies_dir()))
    assert result.returncode == 0, f"run `opa fmt -w policies/`:\n{result.stdout}{result.stderr}"


def test_rego_compiles_in_strict_mode() -> None:
    result = opa.run("check", "--strict", str(opa.policies_dir()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_opa_tests_pass() -> None:
    result = opa.run("test", "--format", "json", str(opa.policies_dir()))
    verbose = opa.run("test", "-v", str(opa.policies_dir())).stdout
    assert result.returncode == 0, verbose
    outcomes = json.loads(result.stdout)
    failed = [o["name"] for o in outcomes if o.get("fail") or o.get("error") or o.get("skip")]
    assert not failed, verbose
    assert len(outcomes) >= MIN_TESTS, f"only {len(outcomes)} opa tests ran:\n{verbose}"


def test_every_policy_line_is_covered() -> None:
    result = opa.run("test", "--coverage", str(opa.policies_dir()))
    assert result.stdout.startswith("{"), (
        f"opa test --coverage failed:\n{result.stdout}{result.stderr}"
    )
    report = json.loads(result.stdout)
    gaps = {
        path: [f"{r['start']['row']}-{r['end']['row']}" for r in file.get("not_covered", [])]
        for path, file in report["files"].items()
        if not path.endswith("_test.rego") and file.get("not_covered")
    }
    assert not gaps, f"lines no opa test reaches: {gaps}"


def test_the_directory_loads_as_the_validator_loads_it() -> None:
    good = opa.policies_dir() / "fixtures" / "good" / "input.yaml"
    document = opa.evaluate("yaml.unmarshal(input.text)", {"text": good.read_text()})
    denied = opa.evaluate(
        "{name: d | some name; d := data.syncbridge[name].deny}", document, opa.policies_dir()
    )
    assert len(denied) == POLICIES, sorted(denied)
    assert all(messages == [] for messages in denied.values()), denied
