/** Parses an Accept header into media types with their parameters, in the client's order. */
export interface AcceptPart {
  /** e.g. `application/json` */
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

export function parseAccept(accept: string | undefined): AcceptPart[] {
  return (accept ?? '').split(',').map((part) => {
    const [type, ...rest] = part.split(';');
    return {
      type: (type ?? '').trim().toLowerCase(),
      params: new Map(rest.map((p) => p.trim().split('=').map((x) => x.trim()) as [string, string])),
    };
  });
}
