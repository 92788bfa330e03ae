/** Kubernetes Events about PikoClusters, as `kubectl describe pikocluster` shows them. */
import { randomBytes } from 'node:crypto';
import type { PikoCluster } from '../api/pikocluster';
import { formatTime } from '../status/conditions';
import { RESOURCES, type KubeClient, type KubeObject } from '../../dataplane/kube/client';

export type EventType = 'Normal' | 'Warning';

/** core/v1 Event in wire form (the generated model types its times as Date). */
interface EventObject extends KubeObject {
  involvedObject: { apiVersion: string; kind: string; name: string; namespace: string; uid: string; resourceVersion?: string };
  type: EventType;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
}

export interface EventRecorder {
  /** Never rejects: an Event that cannot be written is not worth failing a reconcile for. */
  record(cluster: PikoCluster, type: EventType, reason: string, message: string): Promise<void>;
}

export const EVENT_COMPONENT = 'piko-operator';
// Event messages are meant to be short; events.k8s.io caps them at 1 kB.
const MESSAGE_MAX = 1024;

export interface KubeEventRecorderOptions {
  /** This replica, such as the pod name. */
  instance: string;
  now?: () => number;
  /** Told about Events that could not be written (to log them). */
  onError?: (err: unknown) => void;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly now: () => number;

  constructor(
    private readonly client: KubeClient,
    private readonly options: KubeEventRecorderOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async record(cluster: PikoCluster, type: EventType, reason: string, message: string): Promise<void> {
    const nowMs = this.now();
    const time = formatTime(new Date(nowMs));
    const meta = cluster.metadata;
    const event: EventObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        // client-go's naming: the object's name and a unique suffix.
        name: `${meta.name}.${nowMs.toString(16)}${randomBytes(4).toString('hex')}`,
        namespace: meta.namespace,
      },
      involvedObject: {
        apiVersion: cluster.apiVersion,
        kind: cluster.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      },
      type,
      reason,
      message: message.length <= MESSAGE_MAX ? message : `${message.slice(0, MESSAGE_MAX - 3)}...`,
      count: 1,
      firstTimestamp: time,
      lastTimestamp: time,
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.options.instance,
    };
    try {
      await this.client.create(RESOURCES.events, event);
    } catch (err) {
      this.options.onError?.(err);
    }
  }
}
