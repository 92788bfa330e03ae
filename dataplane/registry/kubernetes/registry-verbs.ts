/**
 * The verbs a data-plane pod needs on Leases and ConfigMaps in its namespace,
 * and no more: informers list and watch; server-side apply creates (create)
 * and updates (patch) the pod's own objects; shutdown deletes them. No get or
 * update: reads come from the informers' caches. The operator's Role for the
 * pods is built from this list, so the two cannot drift.
 */
export const REGISTRY_VERBS: readonly string[] = ['list', 'watch', 'create', 'patch', 'delete'];
