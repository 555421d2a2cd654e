# Every Ingress host is served over TLS: each rule names a host, each host
# is covered by a spec.tls entry with a secretName, the certificate behind it
# is issued by cert-manager (an issuer annotation, or a Certificate for that
# secret in the root), and plain HTTP is not left open by disabling the
# redirect.
package syncbridge.ingresstls

import data.syncbridge.lib.k8s

_ingresses contains ing if {
	some ing in input.objects
	k8s.is(ing, "networking.k8s.io", "Ingress")
}

_issuer_annotations := {"cert-manager.io/cluster-issuer", "cert-manager.io/issuer"}

# A TLS host covers a rule host exactly, or as a one-label wildcard.
_covers(tls_host, host) if tls_host == host

_covers(tls_host, host) if {
	startswith(tls_host, "*.")
	suffix := substring(tls_host, 1, -1)
	endswith(host, suffix)
	not contains(trim_suffix(host, suffix), ".")
}

_tls_entries(ing, host) := {tls |
	some tls in object.get(ing.spec, "tls", [])
	some tls_host in object.get(tls, "hosts", [])
	_covers(tls_host, host)
}

deny contains msg if {
	some ing in _ingresses
	some i, rule in ing.spec.rules
	not rule.host
	msg := sprintf("%s: rule %d has no host, so it answers every name without a certificate; set host and list it under spec.tls", [k8s.ref(ing), i])
}

deny contains msg if {
	some ing in _ingresses
	some rule in ing.spec.rules
	count(_tls_entries(ing, rule.host)) == 0
	msg := sprintf("%s: host %s has no TLS; add it to a spec.tls entry's hosts with a secretName cert-manager fills", [k8s.ref(ing), rule.host])
}

deny contains msg if {
	some ing in _ingresses
	some i, tls in object.get(ing.spec, "tls", [])
	not tls.secretName
	msg := sprintf("%s: spec.tls[%d] (%s) has no secretName, so the controller serves its default certificate; set secretName", [k8s.ref(ing), i, concat(", ", object.get(tls, "hosts", []))])
}

deny contains msg if {
	some ing in _ingresses
	some tls in object.get(ing.spec, "tls", [])
	tls.secretName
	not _issued(ing, tls.secretName)
	msg := sprintf("%s: nothing issues TLS secret %s; annotate the Ingress with cert-manager.io/cluster-issuer (or render a cert-manager Certificate with secretName: %s)", [k8s.ref(ing), tls.secretName, tls.secretName])
}

_issued(ing, _) if {
	some annotation in _issuer_annotations
	ing.metadata.annotations[annotation]
}

_issued(ing, secret) if {
	some cert in input.objects
	k8s.is(cert, "cert-manager.io", "Certificate")
	k8s.namespace(cert) == k8s.namespace(ing)
	cert.spec.secretName == secret
}

deny contains msg if {
	some ing in _ingresses
	some annotation in ["nginx.ingress.kubernetes.io/ssl-redirect", "nginx.ingress.kubernetes.io/force-ssl-redirect"]
	ing.metadata.annotations[annotation] == "false"
	msg := sprintf("%s: %s: \"false\" serves its hosts over plain HTTP too; remove the annotation", [k8s.ref(ing), annotation])
}
