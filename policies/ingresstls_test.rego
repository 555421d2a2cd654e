package syncbridge.ingresstls_test

import data.syncbridge.ingresstls
import data.syncbridge.lib.testing

test_good_fixture_passes if {
	count(ingresstls.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.ingresstls) == {"ingresstls"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	ingresstls.deny == {
		"Ingress/harmonyflow-prod/ws-edge: host prod.harmonyflow.io has no TLS; add it to a spec.tls entry's hosts with a secretName cert-manager fills",
		`Ingress/harmonyflow-prod/ws-edge: nginx.ingress.kubernetes.io/ssl-redirect: "false" serves its hosts over plain HTTP too; remove the annotation`,
		"Ingress/harmonyflow-prod/ws-edge: nothing issues TLS secret api-tls; annotate the Ingress with cert-manager.io/cluster-issuer (or render a cert-manager Certificate with secretName: api-tls)",
		"Ingress/harmonyflow-prod/ws-edge: rule 3 has no host, so it answers every name without a certificate; set host and list it under spec.tls",
		"Ingress/harmonyflow-prod/ws-edge: spec.tls[1] (ws.prod.harmonyflow.io) has no secretName, so the controller serves its default certificate; set secretName",
	} with input as data.fixtures.bad.ingresstls
}

_ingress(tls_hosts, host) := {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "n", "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}}, "spec": {
	"tls": [{"hosts": tls_hosts, "secretName": "tls"}],
	"rules": [{"host": host}],
}}

test_wildcard_covers_one_label if {
	count(ingresstls.deny) == 0 with input as testing.root("prod", [_ingress(["*.prod.harmonyflow.io"], "api.prod.harmonyflow.io")])
	count(ingresstls.deny) == 1 with input as testing.root("prod", [_ingress(["*.prod.harmonyflow.io"], "a.api.prod.harmonyflow.io")])
	count(ingresstls.deny) == 1 with input as testing.root("prod", [_ingress(["*.prod.harmonyflow.io"], "prod.harmonyflow.io")])
}

test_a_certificate_for_the_secret_is_an_issuer if {
	ingress := json.remove(_ingress(["a.example"], "a.example"), ["metadata/annotations"])
	cert := {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c", "namespace": "n"}, "spec": {"secretName": "tls", "dnsNames": ["a.example"]}}
	count(ingresstls.deny) == 0 with input as testing.root("prod", [ingress, cert])
	count(ingresstls.deny) == 1 with input as testing.root("prod", [ingress])
}
