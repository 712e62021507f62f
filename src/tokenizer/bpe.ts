// Byte-pair encoding of one pre-tokenized chunk by merge ranks, as tiktoken does: start
// from single bytes and repeatedly merge the adjacent pair whose concatenation has the
// lowest rank, until no adjacent pair is a token. Tokens are binary strings (bytes.ts).

export type Ranks = Map<string, number>;

const NONE = Number.MAX_SAFE_INTEGER;

/** Appends the token ids of `bin` (a binary string) to `out`. */
export function bytePairEncode(bin: string, ranks: Ranks, out: number[]): void {
  const whole = ranks.get(bin);
  if (whole !== undefined) {
    out.push(whole);
    return;
  }
  if (bin.length === 1) throw new Error(`byte ${bin.charCodeAt(0)} has no token in this vocabulary`);
  // starts[i]: where part i begins; rank[i]: rank of merging part i with part i + 1.
  const starts: number[] = [];
  for (let i = 0; i <= bin.length; i++) starts.push(i);
  const rank: number[] = [];
  const pairRank = (i: number): number => {
    if (i + 2 >= starts.length) return NONE;
    return ranks.get(bin.slice(starts[i] as number, starts[i + 2] as number)) ?? NONE;
  };
  for (let i = 0; i < starts.length - 1; i++) rank.push(pairRank(i));
  for (;;) {
    let best = NONE;
    let at = -1;
    for (let i = 0; i < rank.length - 1; i++) {
      if ((rank[i] as number) < best) {
        best = rank[i] as number;
        at = i;
      }
    }
    if (at < 0) break;
    starts.splice(at + 1, 1);
    rank.splice(at + 1, 1);
    rank[at] = pairRank(at);
    if (at > 0) rank[at - 1] = pairRank(at - 1);
  }
  for (let i = 0; i + 1 < starts.length; i++) {
    const piece = bin.slice(starts[i] as number, starts[i + 1] as number);
    const id = ranks.get(piece);
    if (id === undefined) throw new Error(`byte ${piece.charCodeAt(0)} has no token in this vocabulary`);
    out.push(id);
  }
}
