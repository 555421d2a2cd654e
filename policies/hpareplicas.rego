# A workload an autoscaler owns sets no spec.replicas: Argo CD would apply
# the manifest's count on every sync and undo the autoscaler's scaling (and a
# rollout would briefly scale to it). Leave spec.replicas out of the manifest.
package syncbridge.hpareplicas

import data.syncbridge.lib.k8s

deny contains msg if {
	some obj in input.objects
	obj.spec.replicas
	some scaler in k8s.scalers_of(obj)
	msg := sprintf("%s: sets spec.replicas: %v while %s owns its replica count; remove spec.replicas from the manifest (and let Argo CD's ignoreDifferences cover the live field)", [k8s.ref(obj), obj.spec.replicas, k8s.ref(scaler.object)])
}
