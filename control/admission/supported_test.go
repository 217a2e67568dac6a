package admission

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

const nginxDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: web
  labels: {app: nginx}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels: {app: nginx}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      serviceAccountName: nginx
      terminationGracePeriodSeconds: 10
      nodeSelector: {kubernetes.io/os: linux}
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 10
            preference:
              matchExpressions: [{key: disk, operator: In, values: [ssd]}]
      tolerations:
      - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
      securityContext: {fsGroup: 101, runAsNonRoot: true}
      initContainers:
      - name: render
        image: busybox:1.36
        command: [sh, -c, "cp /config/* /html/"]
        volumeMounts:
        - {name: config, mountPath: /config}
        - {name: html, mountPath: /html}
      containers:
      - name: nginx
        image: nginx:1.27.0
        imagePullPolicy: IfNotPresent
        args: [nginx, -g, "daemon off;"]
        ports:
        - {name: http, containerPort: 80, protocol: TCP}
        env:
        - {name: NGINX_PORT, value: "80"}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: API_TOKEN
          valueFrom: {secretKeyRef: {name: nginx-secrets, key: token, optional: true}}
        envFrom:
        - configMapRef: {name: nginx-env}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 256Mi, ephemeral-storage: 1Gi}
        volumeMounts:
        - {name: html, mountPath: /usr/share/nginx/html, readOnly: true}
        - {name: config, mountPath: /etc/nginx/conf.d/default.conf, subPath: default.conf}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          initialDelaySeconds: 2
          periodSeconds: 5
        livenessProbe:
          tcpSocket: {port: 80}
          failureThreshold: 5
        securityContext:
          runAsUser: 101
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      volumes:
      - name: html
        emptyDir: {sizeLimit: 100Mi}
      - name: config
        configMap: {name: nginx-config, defaultMode: 420}
      - name: certs
        secret: {secretName: nginx-tls}
      - name: logs
        hostPath: {path: /var/log/nginx, type: DirectoryOrCreate}
`

const nginxService = `
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  type: NodePort
  selector: {app: nginx}
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP}
`

const piJob = `
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  backoffLimit: 4
  completions: 3
  parallelism: 2
  activeDeadlineSeconds: 600
  ttlSecondsAfterFinished: 100
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
`

const podWithEverythingAllowed = `
apiVersion: v1
kind: Pod
metadata:
  name: tools
  generateName: tools-
  finalizers: [example.com/keep]
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: tools-1, uid: "u", controller: true}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  hostname: tools
  subdomain: svc
  nodeName: node-1
  priority: 0
  priorityClassName: low
  schedulerName: default-scheduler
  automountServiceAccountToken: false
  enableServiceLinks: false
  activeDeadlineSeconds: 3600
  imagePullSecrets: [{name: regcred}]
  restartPolicy: OnFailure
  hostPID: false
  containers:
  - name: shell
    image: alpine
    stdin: true
    tty: true
    workingDir: /root
    terminationMessagePath: /tmp/msg
    terminationMessagePolicy: FallbackToLogsOnError
    startupProbe:
      exec: {command: ["true"]}
    securityContext: {privileged: true, runAsGroup: 0}
status:
  phase: Running
  podIP: 10.244.1.5
  conditions: [{type: Ready, status: "True"}]
  containerStatuses:
  - name: shell
    ready: true
    restartCount: 0
    image: alpine
    imageID: ""
    state: {running: {startedAt: "2024-01-01T00:00:00Z"}}
`

func decodeYAML(t *testing.T, manifest string) map[string]any {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func gvkOf(raw map[string]any) schema.GroupVersionKind {
	apiVersion, _ := raw["apiVersion"].(string)
	kind, _ := raw["kind"].(string)
	return schema.FromAPIVersionAndKind(apiVersion, kind)
}

func TestCheckSupportedAcceptsRealisticManifests(t *testing.T) {
	manifests := map[string]string{
		"deployment": nginxDeployment,
		"service":    nginxService,
		"job":        piJob,
		"pod":        podWithEverythingAllowed,
		"configmap":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {any.key: v}\nbinaryData: {b: AQI=}\nimmutable: true\n",
		"secret":     "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData: {tls.crt: c, tls.key: k}\n",
		"clusterrole": `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:metrics"}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {rbac.example.com/aggregate: "true"}}]
rules:
- {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list, watch]}
- {nonResourceURLs: [/metrics], verbs: [get]}
`,
		"node": `
apiVersion: v1
kind: Node
metadata: {name: node-1}
spec:
  podCIDR: 10.244.1.0/24
  taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  nodeInfo: {kubeletVersion: drover}
`,
		"headless service": "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: None, selector: {app: db}, publishNotReadyAddresses: true, ipFamilyPolicy: SingleStack, ipFamilies: [IPv4]}\n",
		"daemonset": `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: OnDelete}
  minReadySeconds: 5
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers: [{name: agent, image: "drover/agent:1"}]
`,
		"scale": "apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: web}\nspec: {replicas: 3}\nstatus: {replicas: 2, selector: app=web}\n",
		"lease": "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\nspec: {holderIdentity: m1, leaseDurationSeconds: 15, renewTime: \"2024-01-01T00:00:00.000000Z\"}\n",
	}
	for name, manifest := range manifests {
		t.Run(name, func(t *testing.T) {
			raw := decodeYAML(t, manifest)
			if errs := CheckSupported(gvkOf(raw), raw); len(errs) > 0 {
				t.Errorf("refused a supported manifest: %v", errs.ToAggregate())
			}
		})
	}
}

func TestCheckSupportedRefuses(t *testing.T) {
	tpl := "spec.template.spec"
	tests := []struct {
		name     string
		manifest string
		edit     func(raw map[string]any)
		want     []*field.Error
	}{{
		name:     "nfs volume",
		manifest: nginxDeployment,
		edit: func(raw map[string]any) {
			volumes := dig(raw, "spec", "template", "spec", "volumes").([]any)
			volumes[0] = map[string]any{"name": "html", "nfs": map[string]any{"server": "nas", "path": "/exports"}}
		},
		want: []*field.Error{field.Forbidden(field.NewPath("spec", "template", "spec", "volumes").Index(0).Child("nfs"),
			"not supported by drover (supported volume sources: emptyDir, hostPath, configMap, secret)")},
	}, {
		name:     "empty nfs volume source still selects nfs",
		manifest: nginxDeployment,
		edit: func(raw map[string]any) {
			volumes := dig(raw, "spec", "template", "spec", "volumes").([]any)
			volumes[1] = map[string]any{"name": "config", "nfs": map[string]any{}}
		},
		want: []*field.Error{field.Forbidden(field.NewPath("spec", "template", "spec", "volumes").Index(1).Child("nfs"),
			"not supported by drover (supported volume sources: emptyDir, hostPath, configMap, secret)")},
	}, {
		name:     "lifecycle hooks",
		manifest: podWithEverythingAllowed,
		edit: func(raw map[string]any) {
			c := dig(raw, "spec", "containers").([]any)[0].(map[string]any)
			c["lifecycle"] = map[string]any{"preStop": map[string]any{"exec": map[string]any{"command": []any{"sleep", "5"}}}}
		},
		want: []*field.Error{field.Forbidden(field.NewPath("spec", "containers").Index(0).Child("lifecycle"), "")},
	}, {
		name:     "misspelled replicas",
		manifest: nginxDeployment,
		edit: func(raw map[string]any) {
			spec := raw["spec"].(map[string]any)
			spec["replica"] = spec["replicas"]
			delete(spec, "replicas")
		},
		want: []*field.Error{field.Forbidden(field.NewPath("spec", "replica"), `unknown field (did you mean "replicas"?)`)},
	}, {
		name:     "fields are case-sensitive",
		manifest: piJob,
		edit:     func(raw map[string]any) { raw["Metadata"] = raw["metadata"]; delete(raw, "metadata") },
		want:     []*field.Error{field.Forbidden(field.NewPath("Metadata"), `unknown field (did you mean "metadata"?)`)},
	}, {
		name:     "nonsense field",
		manifest: nginxService,
		edit:     func(raw map[string]any) { dig(raw, "metadata").(map[string]any)["colour"] = "blue" },
		want:     []*field.Error{field.Forbidden(field.NewPath("metadata", "colour"), "unknown field")},
	}, {
		name:     "unknown field in a free-form part of a workload",
		manifest: nginxDeployment,
		edit: func(raw map[string]any) {
			dig(raw, "spec", "strategy").(map[string]any)["rollingUpdates"] = map[string]any{}
		},
		want: []*field.Error{field.Forbidden(field.NewPath("spec", "strategy", "rollingUpdates"), `unknown field (did you mean "rollingUpdate"?)`)},
	}, {
		name:     "unknown field under status",
		manifest: podWithEverythingAllowed,
		edit:     func(raw map[string]any) { dig(raw, "status").(map[string]any)["podIp"] = "10.0.0.1" },
		want:     []*field.Error{field.Forbidden(field.NewPath("status", "podIp"), `unknown field (did you mean "podIP"?)`)},
	}, {
		name:     "load balancer service",
		manifest: nginxService,
		edit: func(raw map[string]any) {
			spec := raw["spec"].(map[string]any)
			spec["type"] = "LoadBalancer"
			spec["loadBalancerSourceRanges"] = []any{"10.0.0.0/8"}
		},
		want: []*field.Error{
			field.Forbidden(field.NewPath("spec", "loadBalancerSourceRanges"), ""),
			field.Forbidden(field.NewPath("spec", "type"), `"LoadBalancer" is not supported by drover (supported values: ClusterIP, NodePort)`),
		},
	}, {
		name:     "external name service",
		manifest: nginxService,
		edit: func(raw map[string]any) {
			raw["spec"] = map[string]any{"type": "ExternalName", "externalName": "db.example.com"}
		},
		want: []*field.Error{
			field.Forbidden(field.NewPath("spec", "externalName"), ""),
			field.Forbidden(field.NewPath("spec", "type"), `"ExternalName" is not supported by drover (supported values: ClusterIP, NodePort)`),
		},
	}, {
		name:     "pod-level features the agent lacks",
		manifest: podWithEverythingAllowed,
		edit: func(raw map[string]any) {
			spec := raw["spec"].(map[string]any)
			spec["hostPID"] = true
			spec["affinity"] = map[string]any{"podAntiAffinity": map[string]any{}}
			spec["securityContext"] = map[string]any{"seccompProfile": map[string]any{"type": "RuntimeDefault"}}
			spec["ephemeralContainers"] = []any{} // empty asks for nothing
		},
		want: []*field.Error{
			field.Forbidden(field.NewPath("spec", "affinity", "podAntiAffinity"), "not supported by drover (only nodeAffinity is supported)"),
			field.Forbidden(field.NewPath("spec", "hostPID"), ""),
			field.Forbidden(field.NewPath("spec", "securityContext", "seccompProfile"), ""),
		},
	}, {
		name:     "container features the agent lacks",
		manifest: nginxDeployment,
		edit: func(raw map[string]any) {
			c := dig(raw, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			dig(c, "resources", "limits").(map[string]any)["nvidia.com/gpu"] = "1"
			c["env"] = append(c["env"].([]any), map[string]any{"name": "MEM", "valueFrom": map[string]any{
				"resourceFieldRef": map[string]any{"resource": "limits.memory"}}})
			dig(c, "readinessProbe").(map[string]any)["grpc"] = map[string]any{"port": 9090.0}
			dig(c, "volumeMounts").([]any)[0].(map[string]any)["mountPropagation"] = "HostToContainer"
			c["resizePolicy"] = []any{map[string]any{"resourceName": "cpu", "restartPolicy": "NotRequired"}}
		},
		want: []*field.Error{
			field.Forbidden(field.NewPath(tpl).Child("containers").Index(0).Child("env").Index(3).Child("valueFrom", "resourceFieldRef"),
				"not supported by drover (supported sources: configMapKeyRef, secretKeyRef, fieldRef)"),
			field.Forbidden(field.NewPath(tpl).Child("containers").Index(0).Child("readinessProbe", "grpc"), ""),
			field.Forbidden(field.NewPath(tpl).Child("containers").Index(0).Child("resizePolicy"), ""),
			field.Forbidden(field.NewPath(tpl).Child("containers").Index(0).Child("resources", "limits").Key("nvidia.com/gpu"),
				"not supported by drover (supported resources: cpu, memory, ephemeral-storage)"),
			field.Forbidden(field.NewPath(tpl).Child("containers").Index(0).Child("volumeMounts").Index(0).Child("mountPropagation"), ""),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := decodeYAML(t, tt.manifest)
			tt.edit(raw)
			got := CheckSupported(gvkOf(raw), raw)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), got.ToAggregate())
			}
			for i, want := range tt.want {
				g := got[i]
				if g.Type != want.Type || g.Field != want.Field {
					t.Errorf("error %d = %s %s, want %s %s", i, g.Type, g.Field, want.Type, want.Field)
				}
				if want.Detail != "" && g.Detail != want.Detail {
					t.Errorf("error %d detail = %q, want %q", i, g.Detail, want.Detail)
				}
				if want.Detail == "" && !strings.Contains(g.Detail, "not supported by drover") {
					t.Errorf("error %d detail = %q, want it to say drover does not support it", i, g.Detail)
				}
			}
		})
	}
}

func TestCheckSupportedUnknownKind(t *testing.T) {
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		{Group: "apps", Version: "v1beta2", Kind: "Deployment"},
		{Group: "", Version: "v1", Kind: "PersistentVolume"},
	} {
		expectErrs(t, CheckSupported(gvk, map[string]any{}), "Forbidden kind")
	}
}

// Whatever Default produces is supported, so objects drover wrote itself
// (controllers, kubectl get -o yaml | kubectl apply) always pass again.
func TestCheckSupportedAcceptsDefaultedObjects(t *testing.T) {
	svcClientIP := testService()
	svcClientIP.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	Default(svcClientIP)
	hostPod := testPod()
	hostPod.Spec.HostNetwork = true
	hostPod.Spec.Containers[0].Ports[0].HostPort = 0
	Default(hostPod)
	objs := map[string]struct {
		gvk schema.GroupVersionKind
		obj runtime.Object
	}{
		"pod":           {corev1.SchemeGroupVersion.WithKind("Pod"), testPod()},
		"host pod":      {corev1.SchemeGroupVersion.WithKind("Pod"), hostPod},
		"service":       {corev1.SchemeGroupVersion.WithKind("Service"), testService()},
		"client IP svc": {corev1.SchemeGroupVersion.WithKind("Service"), svcClientIP},
		"deployment":    {appsv1.SchemeGroupVersion.WithKind("Deployment"), testDeployment()},
		"replicaset":    {appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), testReplicaSet()},
		"daemonset":     {appsv1.SchemeGroupVersion.WithKind("DaemonSet"), testDaemonSet()},
		"job":           {batchv1.SchemeGroupVersion.WithKind("Job"), testJob()},
		"binding": {rbacv1.SchemeGroupVersion.WithKind("RoleBinding"), &rbacv1.RoleBinding{
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "a", APIGroup: rbacv1.GroupName}}}},
	}
	for name, o := range objs {
		t.Run(name, func(t *testing.T) {
			js, err := json.Marshal(o.obj)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(js, &raw); err != nil {
				t.Fatal(err)
			}
			if errs := CheckSupported(o.gvk, raw); len(errs) > 0 {
				t.Errorf("refused its own defaults: %v", errs.ToAggregate())
			}
		})
	}
}

// Every field an allowlist names must exist in the Kubernetes type at that
// place; a typo there would silently refuse a supported field.
func TestAllowlistsNameRealFields(t *testing.T) {
	for gvk, k := range allowlists() {
		checkAllowlist(t, gvk.Kind, k.root, k.typ)
	}
}

func checkAllowlist(t *testing.T, at string, n *node, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice && typ.Elem().Kind() != reflect.Uint8 {
		typ = typ.Elem()
	}
	for name, child := range n.fields {
		switch typ.Kind() {
		case reflect.Map:
			checkAllowlist(t, at+"["+name+"]", child, typ.Elem())
		case reflect.Struct:
			f, ok := fieldByJSON(typ, name)
			if !ok {
				t.Errorf("%s: allowlist names %q, which %s does not have", at, name, typ)
				continue
			}
			checkAllowlist(t, at+"."+name, child, f.Type)
		default:
			t.Errorf("%s: allowlist names %q under a %s", at, name, typ)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"replica", "replicas", 1}, {"kitten", "sitting", 3}, {"abc", "", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return v
}
