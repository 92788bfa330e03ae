import { buildPodMonitor } from '../../../../operator/builders/pod-monitor';
import { validateSpec } from '../../../../operator/builders/validate-spec';
import { makeCluster } from '../fixtures';

describe('the PodMonitor of spec.monitoring.podMonitor', () => {
  it('is built only when enabled', () => {
    expect(buildPodMonitor(makeCluster())).toBeUndefined();
    expect(buildPodMonitor(makeCluster({ monitoring: { podMonitor: { enabled: false } } }))).toBeUndefined();
  });

  it("scrapes the admin port of exactly this cluster's pods over plain HTTP, with the spec's labels", () => {
    const monitor = buildPodMonitor(
      makeCluster({ monitoring: { podMonitor: { enabled: true, labels: { release: 'kps' }, interval: '1m30s' } } }),
    );
    expect(monitor).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: 'piko', labels: { release: 'kps', 'app.kubernetes.io/managed-by': 'piko-operator' } },
    });
    expect(monitor!.spec).toEqual({
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'piko', 'app.kubernetes.io/instance': 'piko', 'app.kubernetes.io/component': 'dataplane' },
      },
      podMetricsEndpoints: [{ port: 'admin', path: '/metrics', interval: '90s', scheme: 'http' }],
    });
  });

  it('follows the admin port: HTTPS with its CA and name, and the token its auth wants', () => {
    const monitor = buildPodMonitor(
      makeCluster({
        tls: { admin: { secretName: 'admin-tls' } },
        monitoring: {
          podMonitor: {
            enabled: true,
            interval: '1.5s',
            bearerTokenSecretRef: { name: 'scrape', key: 'token' },
            caSecretRef: { name: 'piko-ca', key: 'ca.crt' },
            serverName: 'admin.piko.internal',
          },
        },
      }),
    );
    expect(monitor!.spec.podMetricsEndpoints).toEqual([
      {
        port: 'admin',
        path: '/metrics',
        // Prometheus has no fractional durations.
        interval: '1500ms',
        scheme: 'https',
        authorization: { type: 'Bearer', credentials: { name: 'scrape', key: 'token' } },
        tlsConfig: { ca: { secret: { name: 'piko-ca', key: 'ca.crt' } }, serverName: 'admin.piko.internal' },
      },
    ]);
  });

  it('refuses labels that are not labels, and an interval too long to be a duration', () => {
    const problems = validateSpec(
      makeCluster({ monitoring: { podMonitor: { enabled: true, labels: { 'bad key!': 'x' }, interval: '100000000h' } } }),
    );
    expect(problems.map((p) => p.field)).toEqual(['spec.monitoring.podMonitor.labels["bad key!"]', 'spec.monitoring.podMonitor.interval']);
  });
});
