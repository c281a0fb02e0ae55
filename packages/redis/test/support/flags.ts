// Flag definitions shared by the redis package's tests.
export const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: {
    if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', 20], ['off', 80]] }],
  },
};

export const vipAgencies = { in: [{ var: 'tenant' }, ['acme', 'globex']] };

export const checkoutTheme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };

export const actor = { actor: 'test-suite' };
