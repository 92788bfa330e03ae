/**
 * Registry records signed with the cluster secret. Anyone who may write
 * Leases or ConfigMaps in the namespace could otherwise publish a record
 * that makes every pod forward clients' requests, headers and bodies
 * included, to an address of their choosing; a reader takes only records
 * signed by a holder of the secret, which only this PikoCluster's pods have.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConfigMapObject, LeaseObject } from './objects';
import {
  ANNOTATION_ADMIN_ADDR,
  ANNOTATION_NODE_ID,
  ANNOTATION_PROXY_ADDR,
  LABEL_CLUSTER,
  LABEL_NODE,
  LABEL_SHARD,
  SHARD_DATA_KEY,
} from './objects';

export const ANNOTATION_SIGNATURE = 'piko.dev/signature';

// The cluster secret also signs forwarded requests (proxy/remote/forward-auth);
// a key of its own keeps one signature from ever passing as the other.
const KEY_LABEL = 'piko registry record v1';

export class RecordSigner {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update(KEY_LABEL).digest();
  }

  /** Adds the signature over every field a reader routes by; returns the same object. */
  sealLease(lease: LeaseObject): LeaseObject {
    lease.metadata = {
      ...lease.metadata,
      annotations: { ...lease.metadata?.annotations, [ANNOTATION_SIGNATURE]: this.mac(leaseFields(lease)) },
    };
    return lease;
  }

  sealShard(cm: ConfigMapObject): ConfigMapObject {
    cm.metadata = { ...cm.metadata, annotations: { ...cm.metadata?.annotations, [ANNOTATION_SIGNATURE]: this.mac(shardFields(cm)) } };
    return cm;
  }

  leaseValid(lease: LeaseObject): boolean {
    return this.check(lease.metadata?.annotations?.[ANNOTATION_SIGNATURE], leaseFields(lease));
  }

  shardValid(cm: ConfigMapObject): boolean {
    return this.check(cm.metadata?.annotations?.[ANNOTATION_SIGNATURE], shardFields(cm));
  }

  private mac(fields: readonly (string | undefined)[]): string {
    // JSON of an array: no two field lists serialise alike, whatever they contain.
    return createHmac('sha256', this.key).update(JSON.stringify(fields)).digest('base64url');
  }

  private check(given: string | undefined, fields: readonly (string | undefined)[]): boolean {
    if (given === undefined) return false;
    const expected = Buffer.from(this.mac(fields));
    const actual = Buffer.from(given);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}

function leaseFields(lease: LeaseObject): (string | undefined)[] {
  const meta = lease.metadata;
  return [
    'lease',
    meta?.name,
    meta?.labels?.[LABEL_CLUSTER],
    meta?.labels?.[LABEL_NODE],
    lease.spec?.holderIdentity ?? undefined,
    meta?.annotations?.[ANNOTATION_NODE_ID],
    meta?.annotations?.[ANNOTATION_PROXY_ADDR],
    meta?.annotations?.[ANNOTATION_ADMIN_ADDR],
  ];
}

function shardFields(cm: ConfigMapObject): (string | undefined)[] {
  const meta = cm.metadata;
  return [
    'shard',
    meta?.name,
    meta?.labels?.[LABEL_CLUSTER],
    meta?.labels?.[LABEL_NODE],
    meta?.labels?.[LABEL_SHARD],
    meta?.annotations?.[ANNOTATION_NODE_ID],
    cm.data?.[SHARD_DATA_KEY],
  ];
}
