/** Schema pieces that point at other objects: Secret names and keys. */
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX, SECRET_KEY } from './k8s-patterns';
import { obj, str } from './schema-builder';

export const secretName = (description: string) =>
  str({ description, required: true, pattern: DNS_SUBDOMAIN, maxLength: DNS_SUBDOMAIN_MAX });

/** `{name, key}` of a Secret in the PikoCluster's namespace, as a container's `secretKeyRef`. */
export const secretKeyRef = (description: string) =>
  obj(
    {
      name: secretName('Name of a Secret in the namespace of the PikoCluster.'),
      key: str({ description: 'Key within the Secret.', required: true, pattern: SECRET_KEY, maxLength: DNS_SUBDOMAIN_MAX }),
    },
    { description },
  );
