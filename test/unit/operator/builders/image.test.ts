import { parseImage, resolveImage } from '../../../../operator/builders/image';

const DIGEST = `sha256:${'0'.repeat(64)}`;

describe('parseImage', () => {
  it('splits repository, tag and digest, telling a registry port from a tag', () => {
    expect(parseImage('piko')).toEqual({ repository: 'piko' });
    expect(parseImage('ghcr.io/org/piko:1.2')).toEqual({ repository: 'ghcr.io/org/piko', tag: '1.2' });
    expect(parseImage('host:5000/piko')).toEqual({ repository: 'host:5000/piko' });
    expect(parseImage(`host:5000/piko:1.2@${DIGEST}`)).toEqual({ repository: 'host:5000/piko', tag: '1.2', digest: DIGEST });
  });
});

describe('resolveImage', () => {
  const def = 'ghcr.io/org/piko:0.1.0';
  it('keeps the default when the spec names no image', () => {
    expect(resolveImage({ pullPolicy: 'IfNotPresent' }, def)).toBe(def);
  });

  it('overrides the parts the spec sets; a mirror keeps the default tag', () => {
    expect(resolveImage({ pullPolicy: 'IfNotPresent', tag: 'dev' }, def)).toBe('ghcr.io/org/piko:dev');
    expect(resolveImage({ pullPolicy: 'IfNotPresent', repository: 'mirror/piko' }, def)).toBe('mirror/piko:0.1.0');
    expect(resolveImage({ pullPolicy: 'IfNotPresent', repository: 'mirror/piko', tag: 'x', digest: DIGEST }, def)).toBe(
      `mirror/piko@${DIGEST}`,
    );
    expect(resolveImage({ pullPolicy: 'IfNotPresent', repository: 'mirror/piko' }, `ghcr.io/org/piko@${DIGEST}`)).toBe(
      `mirror/piko@${DIGEST}`,
    );
  });
});
