package admission

import (
	"reflect"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kindAllowlist is what drover supports of one kind: the root of its
// allowlist over the kind's Go type.
type kindAllowlist struct {
	typ  reflect.Type
	root *node
}

// allowlists is built once and only read after that.
var allowlists = sync.OnceValue(buildAllowlists)

func buildAllowlists() map[schema.GroupVersionKind]kindAllowlist {
	template := only(fields{"metadata": all, "spec": podSpecAllowlist()})
	// Controllers are drover's own code, so every field of their specs is
	// supported; only the pods they make are limited to what the agent runs.
	workload := openWith(fields{"spec": openWith(fields{"template": template})})

	core := corev1.SchemeGroupVersion
	out := map[schema.GroupVersionKind]kindAllowlist{}
	add := func(gvk schema.GroupVersionKind, obj any, root *node) {
		out[gvk] = kindAllowlist{typ: reflect.TypeOf(obj), root: root}
	}
	add(core.WithKind("Pod"), corev1.Pod{}, openWith(fields{"spec": podSpecAllowlist()}))
	add(core.WithKind("Service"), corev1.Service{}, openWith(fields{"spec": serviceSpecAllowlist()}))
	// Kinds that are data drover stores and hands out, not things it runs:
	// all of their fields are supported.
	add(core.WithKind("Namespace"), corev1.Namespace{}, all)
	add(core.WithKind("Node"), corev1.Node{}, all)
	add(core.WithKind("Endpoints"), corev1.Endpoints{}, all)
	add(core.WithKind("ConfigMap"), corev1.ConfigMap{}, all)
	add(core.WithKind("Secret"), corev1.Secret{}, all)
	add(core.WithKind("Event"), corev1.Event{}, all)
	add(core.WithKind("ServiceAccount"), corev1.ServiceAccount{}, all)
	add(appsv1.SchemeGroupVersion.WithKind("Deployment"), appsv1.Deployment{}, workload)
	add(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), appsv1.ReplicaSet{}, workload)
	add(appsv1.SchemeGroupVersion.WithKind("DaemonSet"), appsv1.DaemonSet{}, workload)
	add(batchv1.SchemeGroupVersion.WithKind("Job"), batchv1.Job{}, workload)
	add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), coordinationv1.Lease{}, all)
	add(rbacv1.SchemeGroupVersion.WithKind("Role"), rbacv1.Role{}, all)
	add(rbacv1.SchemeGroupVersion.WithKind("RoleBinding"), rbacv1.RoleBinding{}, all)
	add(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), rbacv1.ClusterRole{}, all)
	add(rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), rbacv1.ClusterRoleBinding{}, all)
	add(autoscalingv1.SchemeGroupVersion.WithKind("Scale"), autoscalingv1.Scale{}, all)
	return out
}

// podSpecAllowlist is the part of a pod spec the drover node agent runs.
// Status is reported by drover itself, so all of it is allowed elsewhere.
func podSpecAllowlist() *node {
	container := containerAllowlist()
	return only(fields{
		"containers":                    container,
		"initContainers":                container,
		"restartPolicy":                 all,
		"terminationGracePeriodSeconds": all,
		"activeDeadlineSeconds":         all,
		"dnsPolicy":                     all,
		"nodeSelector":                  all,
		"nodeName":                      all,
		"serviceAccountName":            all,
		"serviceAccount":                all,
		"automountServiceAccountToken":  all,
		"hostNetwork":                   all,
		"hostname":                      all,
		"subdomain":                     all,
		"affinity":                      onlyHint("only nodeAffinity is supported", fields{"nodeAffinity": all}),
		"tolerations":                   all,
		"schedulerName":                 all,
		"priority":                      all,
		"priorityClassName":             all,
		"securityContext": only(fields{
			"runAsUser":    all,
			"runAsGroup":   all,
			"fsGroup":      all,
			"runAsNonRoot": all,
		}),
		"imagePullSecrets": all,
		"volumes": onlyHint("supported volume sources: emptyDir, hostPath, configMap, secret", fields{
			"name":      all,
			"emptyDir":  all,
			"hostPath":  all,
			"configMap": all,
			"secret":    all,
		}),
		"enableServiceLinks": all,
	})
}

func containerAllowlist() *node {
	resources := onlyHint("supported resources: cpu, memory, ephemeral-storage", fields{
		"cpu":               all,
		"memory":            all,
		"ephemeral-storage": all,
	})
	probe := only(fields{
		"exec":                all,
		"httpGet":             all,
		"tcpSocket":           all,
		"initialDelaySeconds": all,
		"timeoutSeconds":      all,
		"periodSeconds":       all,
		"successThreshold":    all,
		"failureThreshold":    all,
	})
	return only(fields{
		"name":       all,
		"image":      all,
		"command":    all,
		"args":       all,
		"workingDir": all,
		"env": only(fields{
			"name":  all,
			"value": all,
			"valueFrom": onlyHint("supported sources: configMapKeyRef, secretKeyRef, fieldRef", fields{
				"configMapKeyRef": all,
				"secretKeyRef":    all,
				"fieldRef":        all,
			}),
		}),
		"envFrom":   all,
		"ports":     all,
		"resources": only(fields{"requests": resources, "limits": resources}),
		"volumeMounts": only(fields{
			"name":      all,
			"mountPath": all,
			"readOnly":  all,
			"subPath":   all,
		}),
		"livenessProbe":   probe,
		"readinessProbe":  probe,
		"startupProbe":    probe,
		"imagePullPolicy": all,
		"securityContext": only(fields{
			"runAsUser":              all,
			"runAsGroup":             all,
			"privileged":             all,
			"readOnlyRootFilesystem": all,
			"capabilities":           all,
		}),
		"stdin":                    all,
		"tty":                      all,
		"terminationMessagePath":   all,
		"terminationMessagePolicy": all,
	})
}

// serviceSpecAllowlist is what drover's service proxy implements: cluster
// IPs and node ports, no cloud load balancers and no DNS aliases.
func serviceSpecAllowlist() *node {
	return only(fields{
		"ports":    all,
		"selector": all,
		"type": {
			values: []string{string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeNodePort)},
		},
		"clusterIP":                all,
		"clusterIPs":               all,
		"sessionAffinity":          all,
		"sessionAffinityConfig":    all, // the ClientIP timeout Kubernetes defaults
		"externalTrafficPolicy":    all,
		"ipFamilies":               all,
		"ipFamilyPolicy":           all,
		"internalTrafficPolicy":    all,
		"publishNotReadyAddresses": all,
	})
}
