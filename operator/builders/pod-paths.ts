/** Where things live inside a data-plane pod, shared by the ConfigMap and the StatefulSet. */

export const CONTAINER_NAME = 'piko';
export const CONFIG_DIR = '/etc/piko';
export const CONFIG_FILE = 'server.yaml';
export const CONFIG_PATH = `${CONFIG_DIR}/${CONFIG_FILE}`;
export const TLS_DIR = `${CONFIG_DIR}/tls`;

export const PORTS = ['proxy', 'upstream', 'admin'] as const;
export type PortName = (typeof PORTS)[number];

/** Environment the server's YAML refers to as `${NAME}` (`--config.expand-env`). */
export const ENV_POD_NAME = 'POD_NAME';
export const ENV_POD_NAMESPACE = 'POD_NAMESPACE';
export const ENV_POD_UID = 'POD_UID';
export const ENV_POD_IP = 'POD_IP';
export const ENV_CLUSTER_SECRET = 'PIKO_CLUSTER_SECRET';

/** Key of the generated cluster Secret that holds the shared node secret. */
export const CLUSTER_SECRET_KEY = 'secret';

/** The image's non-root user (Dockerfile `USER 65532:65532`). */
export const RUN_AS_USER = 65532;
