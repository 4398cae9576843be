// Validates Kubernetes objects offline, as rendered by `kubectl kustomize`.
//
//   node validate-manifests.mjs [--expect single|scaled] RENDERED.yaml
//
// Every object must be of a known apiVersion/kind, valid against the
// Kubernetes schema (the npm package kubernetes-models, Kubernetes 1.33's
// OpenAPI) and free of fields the schema does not know. With --expect it
// also checks what deploy/README.md promises of that overlay. Exit status 1
// on any finding, each one printed as "DOC kind/name: /path: message".
//
// Unknown fields: kubernetes-models checks types, required fields and enums
// but ignores keys the schema does not define (`spec.replica: 3` passes),
// and since 4.4 it ships its schemas only as compiled ajv validators, with no
// `properties` left to walk. So the object is handed to that validator
// wrapped in Proxies that record every key it reads: a validator compiled
// from a schema reads each property the schema defines (`data.replicas ===
// undefined || ...`), reads every key of a map (additionalProperties: `for
// (k in data)`), and descends only into what it reads. What it never read in
// an object it did read from is a field the schema lacks. An object reached
// but read nothing from is free-form (x-kubernetes-preserve-unknown-fields)
// or an int-or-string/Quantity leaf, and is skipped; so is everything below an
// unknown field (reported once, at its top).
import fs from 'node:fs';
import { parseAllDocuments } from 'yaml';

const args = process.argv.slice(2);
let expect = null;
if (args[0] === '--expect') {
  expect = args[1];
  args.splice(0, 2);
}
if (args.length !== 1 || (expect !== null && !['single', 'scaled'].includes(expect))) {
  console.error('usage: node validate-manifests.mjs [--expect single|scaled] RENDERED.yaml');
  process.exit(2);
}

const findings = [];
const objects = [];

// YAML 1.1, as the API server's (and kubectl's) sigs.k8s.io/yaml reads it:
// `0440` is octal, `no` is false.
const text = fs.readFileSync(args[0] === '-' ? 0 : args[0], 'utf8');
const docs = parseAllDocuments(text, { version: '1.1' });
docs.forEach((doc, i) => {
  for (const e of doc.errors) findings.push(`document ${i + 1}: YAML: ${e.message}`);
  if (doc.errors.length === 0) {
    const value = doc.toJS({ maxAliasCount: 0 });
    if (value !== null && value !== undefined) objects.push({ index: i + 1, value });
  }
});
if (objects.length === 0 && findings.length === 0) findings.push('no objects rendered');

// kubernetes-models/<group>/<version> (core: kubernetes-models/v1) exports a
// class per kind, carrying its apiVersion and kind; the Prometheus Operator's
// CRDs (ServiceMonitor, PrometheusRule, ...) come from their own package,
// generated from the Operator's CRD schemas.
const crdPackages = { 'monitoring.coreos.com': '@kubernetes-models/prometheus-operator' };
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || !/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion))
    return null;
  if (typeof kind !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  const pkg = crdPackages[apiVersion.split('/')[0]] ?? 'kubernetes-models';
  let module;
  try {
    module = await import(`${pkg}/${apiVersion}`);
  } catch {
    return null;
  }
  const model = module[kind];
  return model && model.apiVersion === apiVersion && model.kind === kind ? model : null;
}

// Wraps value so that reads are recorded; proxies are made on first read, so
// only what the validator reached gets a record.
function tracked(value, path, records) {
  if (value === null || typeof value !== 'object') return value;
  const record = { path, value, read: new Set() };
  records.push(record);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const child = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return child;
      // Absent keys count too: `data.medium === undefined` shows that the
      // validator treats this object as one with known properties.
      record.read.add(key);
      if (!Object.prototype.hasOwnProperty.call(target, key)) return child;
      if (!children.has(key)) children.set(key, tracked(child, `${path}/${key}`, records));
      return children.get(key);
    },
  });
}

function unknownFields(records) {
  const out = [];
  const reported = [];
  for (const { path, value, read } of records) {
    if (Array.isArray(value) || read.size === 0) continue;
    if (reported.some((p) => path.startsWith(`${p}/`))) continue;
    for (const key of Object.keys(value)) {
      if (!read.has(key)) {
        out.push(`${path}/${key}: unknown field "${key}"`);
        reported.push(`${path}/${key}`);
      }
    }
  }
  return out;
}

for (const { index, value } of objects) {
  const name = value?.metadata?.name ?? '?';
  const where = `document ${index} ${value?.kind ?? '?'}/${name}`;
  const model = await modelFor(value?.apiVersion, value?.kind);
  if (model === null) {
    findings.push(`${where}: unknown apiVersion/kind ${JSON.stringify(value?.apiVersion)}/${JSON.stringify(value?.kind)}`);
    continue;
  }
  const records = [];
  let typeErrors = [];
  try {
    // The class's validate() runs the compiled schema on `this`.
    model.prototype.validate.call(tracked(value, '', records));
  } catch (e) {
    typeErrors = (e.errors ?? [{ instancePath: '', message: e.message }]).map(
      (err) => `${err.instancePath || '/'}: ${err.message}${err.params?.allowedValues ? ` ${JSON.stringify(err.params.allowedValues)}` : ''}`,
    );
  }
  for (const f of typeErrors) findings.push(`${where}: ${f}`);
  // An invalid object may have stopped the validator early: its unread keys
  // prove nothing then.
  if (typeErrors.length === 0) for (const f of unknownFields(records)) findings.push(`${where}: ${f}`);
}

// ---- what the docs promise of each overlay
function check(condition, message) {
  if (!condition) findings.push(`${expect} overlay: ${message}`);
}
const all = objects.map((o) => o.value);
const ofKind = (kind) => all.filter((o) => o?.kind === kind);
const selects = (selector, labels) =>
  selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

if (expect !== null && findings.length === 0) {
  const gateways = ofKind('Deployment').filter((d) => d.metadata.name === 'notify-gateway');
  check(gateways.length === 1, 'exactly one Deployment notify-gateway');
  const gw = gateways[0];
  if (gw) {
    const pod = gw.spec.template;
    const container = pod.spec.containers.find((c) => c.name === 'notify-gateway');
    // The container's environment as the kubelet builds it: the ConfigMaps
    // of envFrom first, then env, which wins.
    const env = {};
    for (const from of container?.envFrom ?? []) {
      const cm = ofKind('ConfigMap').find((c) => c.metadata.name === from.configMapRef?.name);
      check(cm !== undefined, `envFrom names a rendered ConfigMap (${JSON.stringify(from)})`);
      Object.assign(env, cm?.data ?? {});
    }
    for (const e of container?.env ?? []) env[e.name] = e.value;
    const maxConnections = Number(env.NOTIFY_MAX_CONNECTIONS);
    check(Number.isInteger(maxConnections) && maxConnections > 0, 'NOTIFY_MAX_CONNECTIONS set (alerts compare with it)');
    const strategy = gw.spec.strategy ?? {};
    check(strategy.type === 'RollingUpdate' && strategy.rollingUpdate?.maxUnavailable === 0,
      'rolling update with maxUnavailable 0');
    check(selects(gw.spec.selector.matchLabels, pod.metadata.labels), 'the Deployment selects its own pods');
    const shutdown = Number(env.NOTIFY_SHUTDOWN_TIMEOUT);
    check(Number.isFinite(shutdown) && shutdown > 0, 'NOTIFY_SHUTDOWN_TIMEOUT set');
    const preStop = container?.lifecycle?.preStop;
    let preStopSeconds = 0;
    if (preStop?.sleep) preStopSeconds = preStop.sleep.seconds;
    else if (preStop?.exec) {
      const cmd = preStop.exec.command ?? [];
      check(cmd.length === 2 && /(^|\/)sleep$/.test(cmd[0]) && /^[0-9]+$/.test(cmd[1]),
        `preStop is a plain sleep (${JSON.stringify(cmd)})`);
      preStopSeconds = Number(cmd[1]);
    } else check(preStop === undefined, 'no preStop hook other than a sleep');
    // SIGKILL must not cut the drain short: preStop + shutdown + ~1 s of gRPC.
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    check(grace > preStopSeconds + shutdown + 1,
      `terminationGracePeriodSeconds ${grace} > preStop ${preStopSeconds} + NOTIFY_SHUTDOWN_TIMEOUT ${shutdown} + 1`);
    const services = ofKind('Service').filter((s) => selects(s.spec.selector, pod.metadata.labels));
    check(services.length === 1 && services[0].metadata.name === 'notify-gateway',
      'exactly one Service, notify-gateway, selects the gateway pods');
    check(preStopSeconds >= 3, `a preStop sleep of a few seconds (got ${preStopSeconds})`);

    // Monitoring: the ServiceMonitor scrapes the gateway Service's metrics
    // port; the PrometheusRule carries the alerts with what docs/runbook.md
    // and the monitoring mixins expect of each.
    const monitors = ofKind('ServiceMonitor');
    check(monitors.length === 1, 'one ServiceMonitor');
    const gwService = ofKind('Service').find((s) => s.metadata.name === 'notify-gateway');
    if (monitors[0] && gwService) {
      check(selects(monitors[0].spec.selector?.matchLabels, gwService.metadata.labels),
        'the ServiceMonitor selects the notify-gateway Service');
      check(monitors[0].spec.endpoints.some((e) => gwService.spec.ports.some((p) => p.name === e.port && p.port === Number(env.NOTIFY_METRICS_PORT))),
        'the ServiceMonitor scrapes the Service port of NOTIFY_METRICS_PORT');
    }
    const ruleObjects = ofKind('PrometheusRule');
    check(ruleObjects.length === 1, 'one PrometheusRule');
    const alerts = (ruleObjects[0]?.spec.groups ?? []).flatMap((g) => g.rules).filter((r) => r.alert);
    check(alerts.length >= 10, `alerts in the PrometheusRule (got ${alerts.length})`);
    for (const a of alerts) {
      check(/^NotifyGateway[A-Z][A-Za-z]+$/.test(a.alert), `alert ${a.alert} is CamelCase with the NotifyGateway prefix`);
      check(['critical', 'warning', 'info'].includes(a.labels?.severity), `alert ${a.alert} has a severity`);
      for (const k of ['summary', 'description', 'runbook_url'])
        check(typeof a.annotations?.[k] === 'string' && a.annotations[k].length > 0, `alert ${a.alert} has ${k}`);
      check(a.annotations?.runbook_url?.endsWith(`runbook.md#${a.alert.toLowerCase()}`), `alert ${a.alert}'s runbook_url points at its section`);
    }

    // Who may reach the gateway: everyone on the WebSocket port, a selected
    // few on the admin and metrics ports.
    const policies = ofKind('NetworkPolicy').filter((p) => selects(p.spec.podSelector?.matchLabels, pod.metadata.labels));
    check(policies.length === 1, 'one NetworkPolicy selects the gateway pods');
    const rulesFor = (port) => (policies[0]?.spec.ingress ?? []).filter((r) => (r.ports ?? []).some((p) => p.port === port));
    check(rulesFor('http').some((r) => r.from === undefined), 'the WebSocket port is open to all');
    for (const port of ['grpc', 'metrics']) {
      const rules = rulesFor(port);
      check(rules.length > 0 && rules.every((r) => (r.from ?? []).length > 0), `port ${port} is open only to selected peers`);
    }

    const isRedis = (o) =>
      /redis/i.test(o?.metadata?.name ?? '') || /redis/i.test(o?.metadata?.labels?.['app.kubernetes.io/name'] ?? '');

    if (expect === 'single') {
      check(gw.spec.replicas === 1, `1 replica (got ${gw.spec.replicas})`);
      check(!('NOTIFY_REDIS_URL' in env) && !('NOTIFY_REDIS_PASSWORD_FILE' in env), 'no NOTIFY_REDIS_* setting');
      check(!all.some(isRedis), 'no Redis objects');
      check(ofKind('PodDisruptionBudget').length === 0, 'no PodDisruptionBudget');
      check(ofKind('HorizontalPodAutoscaler').length === 0, 'no HorizontalPodAutoscaler (one replica without Redis)');
    } else {
      // The HPA owns the count: the Deployment must not set one, or every
      // `kubectl apply` would reset what the HPA chose.
      check(gw.spec.replicas === undefined, `no replicas in the Deployment, the HPA owns them (got ${gw.spec.replicas})`);
      check(strategy.rollingUpdate?.maxSurge === 1, 'rolling update with maxSurge 1');
      const url = env.NOTIFY_REDIS_URL ?? '';
      const m = /^redis:\/\/([a-z0-9-]+):([0-9]+)$/.exec(url);
      check(m !== null, `NOTIFY_REDIS_URL is redis://SERVICE:PORT (got ${JSON.stringify(url)})`);
      // The URL names the rendered Redis Service, which selects the Redis pods.
      const redisService = m && ofKind('Service').find((s) => s.metadata.name === m[1]);
      check(redisService && redisService.spec.ports.some((p) => p.port === Number(m[2])),
        `a Service ${m?.[1]} with port ${m?.[2]} for NOTIFY_REDIS_URL`);
      const redisSets = ofKind('StatefulSet').filter(isRedis);
      check(redisSets.length === 1, 'one Redis StatefulSet');
      const redis = redisSets[0];
      if (redis && redisService) {
        const rpod = redis.spec.template;
        const rc = rpod.spec.containers[0];
        check(redisService.spec.clusterIP === 'None' && redis.spec.serviceName === redisService.metadata.name,
          'the Redis Service is headless and governs the StatefulSet');
        check(selects(redisService.spec.selector, rpod.metadata.labels), 'the Redis Service selects the Redis pods');
        check(!selects(redisService.spec.selector, pod.metadata.labels), 'the Redis Service does not select gateways');
        check(!selects(services[0]?.spec.selector, rpod.metadata.labels), 'the gateway Service does not select Redis');
        check(/^redis:7(\.|$)/.test(rc.image), `a redis:7 image (got ${rc.image})`);
        check(JSON.stringify(rc.args) === JSON.stringify(['--save', '', '--appendonly', 'no']),
          `Redis without persistence (args ${JSON.stringify(rc.args)})`);
        check(JSON.stringify(rc.readinessProbe?.exec?.command) === '["redis-cli","ping"]', 'Redis readiness probe redis-cli ping');
        check(rc.livenessProbe !== undefined, 'Redis liveness probe');
        check(rc.resources?.requests?.cpu && rc.resources?.requests?.memory, 'Redis resource requests');
        check(rpod.spec.securityContext?.runAsNonRoot === true && rc.securityContext?.allowPrivilegeEscalation === false,
          'Redis runs as non-root without privilege escalation');
      }
      const pdbs = ofKind('PodDisruptionBudget');
      check(pdbs.length === 1, 'one PodDisruptionBudget');
      const pdb = pdbs[0];
      if (pdb) {
        check(selects(pdb.spec.selector?.matchLabels, pod.metadata.labels), 'the PodDisruptionBudget selects the gateway pods');
        check(!redis || !selects(pdb.spec.selector?.matchLabels, redis.spec.template.metadata.labels),
          'the PodDisruptionBudget does not select Redis');
        // Judged at the fewest replicas the HPA keeps.
        const fewest = ofKind('HorizontalPodAutoscaler')[0]?.spec.minReplicas ?? gw.spec.replicas;
        const allowed = pdb.spec.maxUnavailable ?? fewest - pdb.spec.minAvailable;
        check(allowed >= 1 && allowed < fewest, 'the PodDisruptionBudget lets one pod go, not all');
      }
      const hpas = ofKind('HorizontalPodAutoscaler');
      check(hpas.length === 1, 'one HorizontalPodAutoscaler');
      const hpa = hpas[0];
      if (hpa) {
        check(hpa.spec.scaleTargetRef.kind === 'Deployment' && hpa.spec.scaleTargetRef.name === 'notify-gateway',
          'the HorizontalPodAutoscaler scales the gateway Deployment');
        check(hpa.spec.minReplicas === 3 && hpa.spec.maxReplicas > hpa.spec.minReplicas,
          'the HorizontalPodAutoscaler keeps at least 3 replicas and can add more');
        check(hpa.spec.metrics.some((m) => m.type === 'Resource' && m.resource.name === 'cpu'), 'the HPA scales on CPU');
        const conns = hpa.spec.metrics.find((m) => m.type === 'Pods' && m.pods.metric.name === 'notify_connections_open');
        check(conns !== undefined, 'the HPA scales on notify_connections_open per pod');
        const target = Number(conns?.pods.target.averageValue);
        check(target > 0 && target < maxConnections,
          `the HPA's connection target ${target} is below NOTIFY_MAX_CONNECTIONS ${maxConnections}`);
        check(hpa.spec.behavior?.scaleDown?.policies?.every((p) => p.type === 'Pods' && p.value === 1),
          'the HPA removes one pod at a time');
      }
      const ingresses = ofKind('Ingress');
      check(ingresses.length === 1, 'one Ingress');
      const paths = (ingresses[0]?.spec.rules ?? []).flatMap((r) => r.http.paths);
      check(paths.length > 0 && paths.every((p) => p.backend.service.name === 'notify-gateway' && p.backend.service.port.name === 'http'),
        'the Ingress routes to the gateway Service\'s http port only');
      check(Number(ingresses[0]?.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-read-timeout']) >= 3600,
        'the Ingress keeps idle WebSockets for an hour');
      const redisPolicies = ofKind('NetworkPolicy').filter((p) => redis && selects(p.spec.podSelector?.matchLabels, redis.spec.template.metadata.labels));
      check(redisPolicies.length === 1 && redisPolicies[0].spec.ingress.every((r) =>
        (r.from ?? []).length > 0 && r.from.every((f) => selects(f.podSelector?.matchLabels, pod.metadata.labels))),
      'only gateway pods may reach Redis');
      const spread = pod.spec.topologySpreadConstraints ?? [];
      for (const key of ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']) {
        check(spread.some((c) => c.topologyKey === key && selects(c.labelSelector?.matchLabels, pod.metadata.labels)),
          `topology spread over ${key} selecting the gateway pods`);
      }
      const anti = pod.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      check(anti.some((t) => t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
        selects(t.podAffinityTerm.labelSelector?.matchLabels, pod.metadata.labels)),
      'preferred pod anti-affinity per node');
    }
  }
}

for (const f of findings) console.error(`  ${f}`);
if (findings.length > 0) {
  console.error(`FAIL: ${args[0]}: ${findings.length} finding(s)`);
  process.exit(1);
}
console.log(`ok: ${objects.length} objects valid${expect ? `, ${expect} overlay as documented` : ''}`);
