package syncbridge.appproject_test

import data.syncbridge.appproject
import data.syncbridge.lib.testing

test_good_fixture_passes if {
	count(appproject.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.appproject) == {"appproject"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	appproject.deny == {
		"AppProject/argocd/default: redefines Argo CD's default AppProject; give the project its own name and point the Applications at it",
		`AppProject/argocd/infrastructure: destination namespace "*" is a wildcard; name each namespace (and the cluster) this project may deploy to`,
		`AppProject/argocd/infrastructure: sourceRepos "*" admits repositories by wildcard; list this repository and the pinned chart repositories by URL`,
		"Application/argocd/session-core-prod: belongs to the default AppProject, which any repository may deploy anywhere through; set spec.project to this repository's scoped project",
		"Application/argocd/ws-edge-prod: belongs to the default AppProject, which any repository may deploy anywhere through; set spec.project to this repository's scoped project",
		"ApplicationSet/argocd/apps: generates Applications in the default AppProject; set spec.template.spec.project to this repository's scoped project",
	} with input as data.fixtures.bad.appproject
}

test_templated_project_passes if {
	set := {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "s", "namespace": "argocd"}, "spec": {"template": {"spec": {"project": "{{project}}"}}}}
	count(appproject.deny) == 0 with input as testing.root("prod", [set])
}

test_wildcard_in_a_repository_url_is_denied if {
	project := {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "p", "namespace": "argocd"}, "spec": {"sourceRepos": ["https://git.harmonyflow.io/*"], "destinations": [{"name": "in-cluster", "namespace": "harmonyflow-*"}]}}
	count(appproject.deny) == 2 with input as testing.root("prod", [project])
}
