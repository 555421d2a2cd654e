# Argo CD objects never use the `default` AppProject, which admits any
# repository into any namespace: every Application (and ApplicationSet
# template) names a scoped project, and no AppProject is called default. A
# project scopes its sources and destinations by name, never by `*`.
package syncbridge.appproject

import data.syncbridge.lib.k8s

deny contains msg if {
	some app in input.objects
	k8s.is(app, "argoproj.io", "Application")
	object.get(app.spec, "project", "default") == "default"
	msg := sprintf("%s: belongs to the default AppProject, which any repository may deploy anywhere through; set spec.project to this repository's scoped project", [k8s.ref(app)])
}

deny contains msg if {
	some set in input.objects
	k8s.is(set, "argoproj.io", "ApplicationSet")
	object.get(set.spec.template.spec, "project", "default") == "default"
	msg := sprintf("%s: generates Applications in the default AppProject; set spec.template.spec.project to this repository's scoped project", [k8s.ref(set)])
}

deny contains msg if {
	some project in input.objects
	k8s.is(project, "argoproj.io", "AppProject")
	project.metadata.name == "default"
	msg := sprintf("%s: redefines Argo CD's default AppProject; give the project its own name and point the Applications at it", [k8s.ref(project)])
}

deny contains msg if {
	some project in input.objects
	k8s.is(project, "argoproj.io", "AppProject")
	some repo in object.get(project.spec, "sourceRepos", [])
	contains(repo, "*")
	msg := sprintf("%s: sourceRepos %q admits repositories by wildcard; list this repository and the pinned chart repositories by URL", [k8s.ref(project), repo])
}

deny contains msg if {
	some project in input.objects
	k8s.is(project, "argoproj.io", "AppProject")
	some destination in object.get(project.spec, "destinations", [])
	some field in ["namespace", "server", "name"]
	contains(object.get(destination, field, ""), "*")
	msg := sprintf("%s: destination %s %q is a wildcard; name each namespace (and the cluster) this project may deploy to", [k8s.ref(project), field, destination[field]])
}
