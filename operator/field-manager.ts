/** The operator's one field manager, so server-side applies from any replica agree on who owns what. */
export const FIELD_MANAGER = 'piko-operator';
