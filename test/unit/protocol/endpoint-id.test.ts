import { MAX_ENDPOINT_ID_LENGTH, validateEndpointId } from '../../../dataplane/protocol/endpoint-id';

describe('validateEndpointId', () => {
  it.each(['my-endpoint', 'a', 'A.b_c~d-9', 'x'.repeat(MAX_ENDPOINT_ID_LENGTH)])('accepts %j', (id) => {
    expect(validateEndpointId(id)).toBeUndefined();
  });

  it.each([
    ['', 'endpoint id is empty'],
    ['a/b', 'contains "/"'],
    ['a b', 'contains " "'],
    ['a\u0000b', 'contains "\\u0000"'],
    ['tab\there', 'contains "\\t"'],
    ['caf\u00e9', 'contains "\u00e9"'],
    ['a:b', 'contains ":"'],
    ['a?b', 'contains "?"'],
    ['x'.repeat(MAX_ENDPOINT_ID_LENGTH + 1), 'the limit is 128'],
  ])('rejects %j', (id, message) => {
    expect(validateEndpointId(id)).toContain(message);
  });
});
