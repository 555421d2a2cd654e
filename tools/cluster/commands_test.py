from __future__ import annotations

import json
from pathlib import Path

from tools.cluster import certs, commands
from tools.cluster.layout import Layout, Ports
from tools.cluster.procs import Process

TOOLS = commands.Tools.in_dir(Path("/opt/bin"))
PKI = certs.load(Path("/state/pki"))
LAYOUT = Layout(Path("/state"))
PORTS = Ports()


def every_process() -> list[Process]:
    return [
        commands.etcd(TOOLS, LAYOUT, PORTS),
        commands.apiserver(TOOLS, LAYOUT, PORTS, PKI),
        commands.controller_manager(TOOLS, LAYOUT, PORTS, PKI),
        commands.scheduler(TOOLS, LAYOUT, PORTS),
        commands.kwok(TOOLS, LAYOUT, PORTS, None),
        commands.redis(LAYOUT, PORTS),
        commands.repo_server(TOOLS, LAYOUT, PORTS),
        commands.application_controller(TOOLS, LAYOUT, PORTS),
        commands.git_proxy(Path("/usr/bin/python3.11"), LAYOUT, PORTS, PKI, Path("/repo")),
    ]


def test_tools_are_named_as_setup_builds_them() -> None:
    assert TOOLS.kube_apiserver == Path("/opt/bin/kube-apiserver")
    assert TOOLS.kube_controller_manager == Path("/opt/bin/kube-controller-manager")


def test_nothing_binds_a_wildcard_address_nor_writes_outside_the_state() -> None:
    for proc in every_process():
        joined = " ".join(proc.argv)
        assert "0.0.0.0" not in joined, proc.name  # noqa: S104 - the address must not appear
        assert " /tmp" not in joined and "=/tmp" not in joined, proc.name
        assert "=/var" not in joined, proc.name


def test_apiserver_keeps_pod_security_admission_and_rbac() -> None:
    argv = commands.apiserver(TOOLS, LAYOUT, PORTS, PKI).argv
    assert "--enable-admission-plugins=PodSecurity" in argv
    assert "--authorization-mode=Node,RBAC" in argv
    assert f"--etcd-servers=http://127.0.0.1:{PORTS.etcd_client}" in argv


def test_argocd_roles_and_the_repo_servers_proxy() -> None:
    repo = commands.repo_server(TOOLS, LAYOUT, PORTS)
    controller = commands.application_controller(TOOLS, LAYOUT, PORTS)
    assert repo.env["ARGOCD_BINARY_NAME"] == "argocd-repo-server"
    assert controller.env["ARGOCD_BINARY_NAME"] == "argocd-application-controller"
    assert repo.env["HTTPS_PROXY"] == f"http://127.0.0.1:{PORTS.git_proxy}"
    assert "HTTPS_PROXY" not in controller.env  # it only talks to the API server and repo-server
    assert controller.env["ARGOCD_FAKE_IN_CLUSTER"] == "true"
    assert repo.env["TMPDIR"].startswith("/state/")
    assert repo.env["PATH"].split(":")[0] == str(LAYOUT.tool_path)


def test_kubeconfig_names_the_admin_certificates() -> None:
    config = json.loads(commands.kubeconfig(PKI, "https://apiserver.invalid"))
    user = config["users"][0]["user"]
    assert user["client-certificate"] == "/state/pki/admin.crt"
    assert config["clusters"][0]["cluster"]["certificate-authority"] == "/state/pki/ca.crt"
