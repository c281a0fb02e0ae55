/**
 * A flag's evaluation that a request (or an event) is attributed to: which variant the caller was
 * served and whether the percentage split decided it. Only split decisions are randomized, so
 * only they are compared between arms; a variant served by a targeting rule (a pilot group)
 * is counted apart.
 */
export interface Exposure {
  readonly flagKey: string;
  readonly variant: string;
  /** True when the flag's tail percentage split chose the variant (reason SPLIT). */
  readonly split: boolean;
  /** The unit the caller counts as for "distinct units" (targetingKey by default). */
  readonly unit?: string | undefined;
}

/** The name an arm is stored under: `split:<variant>` (randomized) or `targeted:<variant>`. */
export function armOf(exposure: Pick<Exposure, 'variant' | 'split'>): string {
  return `${exposure.split ? 'split' : 'targeted'}:${exposure.variant}`;
}
