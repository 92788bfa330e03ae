/** `spec.monitoring`: how Prometheus finds the pods' metrics. */
import { bool, duration, map, obj, str, type Infer } from './schema-builder';
import { secretKeyRef } from './spec-refs';

export const monitoringSchema = obj(
  {
    podMonitor: obj(
      {
        enabled: bool({
          description:
            "Create the PodMonitor `<name>` (monitoring.coreos.com/v1) scraping every pod's admin port; Ready is False with reason PrometheusOperatorNotInstalled while its CRD is not served.",
          default: false,
        }),
        labels: map(str({ description: 'Label value.' }), {
          description:
            "Extra labels of the PodMonitor, such as the one your Prometheus's podMonitorSelector matches (release: kube-prometheus-stack).",
        }),
        interval: duration({ description: 'Scrape interval.', default: '30s' }),
        bearerTokenSecretRef: secretKeyRef(
          'Secret key holding a token the admin port accepts, sent as a Bearer token; needed when spec.auth.admin is set.',
        ),
        caSecretRef: secretKeyRef(
          "Secret key holding the CA that verifies the admin port's certificate when spec.tls.admin is set; the system roots when unset.",
        ),
        serverName: str({
          description: "Name to verify in the admin port's certificate; Prometheus scrapes by pod IP.",
          maxLength: 253,
          pattern: '^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$',
        }),
      },
      { description: 'A Prometheus Operator PodMonitor for the pods.', default: {} },
    ),
  },
  { description: 'Prometheus scraping of the data plane (the chart ships the dashboard and the alerts).', default: {} },
);

export type MonitoringSpec = Infer<typeof monitoringSchema>;
