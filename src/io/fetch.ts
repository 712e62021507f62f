// One bounded HTTP(S) GET: a time limit for the whole transfer and a size limit that stops
// reading as soon as it is passed, so a slow or endless answer cannot hold a request or fill
// memory. For what is fetched on a user's behalf (feeds to index, images in a chat request).
export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
}

export interface Fetched {
  bytes: Buffer;
  contentType: string;
}

export async function fetchLimited(url: string, limits: FetchLimits): Promise<Fetched> {
  if (!/^https?:\/\//i.test(url)) throw new Error(`${url}: only http(s) URLs can be fetched`);
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: "follow" });
  } catch (e) {
    const reason = signal.aborted ? `no answer within ${limits.timeoutMs} ms` : (e as Error).message;
    throw new Error(`${url}: ${reason}`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > limits.maxBytes) {
    await response.body?.cancel();
    throw new Error(`${url}: ${declared} bytes, more than the limit of ${limits.maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    for (let r = await reader?.read(); r && !r.done; r = await reader?.read()) {
      const chunk = r.value;
      size += chunk.length;
      if (size > limits.maxBytes) {
        await reader?.cancel();
        throw new Error(`${url}: more than the limit of ${limits.maxBytes} bytes`);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (e) {
    if (signal.aborted) throw new Error(`${url}: not received within ${limits.timeoutMs} ms`);
    throw e;
  }
  return { bytes: Buffer.concat(chunks), contentType: response.headers.get("content-type") ?? "" };
}
