// OCR with tesseract.js (Tesseract's LSTM recognizer compiled to WebAssembly): images in,
// text out, for a language model to read. English data ships in the @tesseract.js-data/eng
// package; Chinese comes from Debian's tesseract-ocr-chi-sim. Nothing is downloaded: the
// data is gathered into one folder in llmfab's cache, and a missing language says how to
// install it. One worker per language set is kept for the life of the process.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import Tesseract from "tesseract.js";
import { cacheDir } from "../io/cache.ts";
import { checkImage, ImageError, type ImageInfo } from "../io/image.ts";

export const OCR_LANGUAGES = ["eng", "chi_sim"] as const;
export type OcrLanguage = (typeof OCR_LANGUAGES)[number];

const DEBIAN_TESSDATA = ["/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata"];

/** Where a language's traineddata comes from, or an error saying how to get it. */
function languageSource(lang: OcrLanguage): { path: string; gzip: boolean } {
  if (lang === "eng") {
    const pkg = createRequire(import.meta.url).resolve("@tesseract.js-data/eng/package.json");
    return { path: join(dirname(pkg), "4.0.0_best_int", "eng.traineddata.gz"), gzip: true };
  }
  const found = DEBIAN_TESSDATA.map((d) => join(d, `${lang}.traineddata`)).find((p) => existsSync(p));
  if (!found)
    throw new Error(
      `OCR data for ${lang} is missing: install Debian's tesseract-ocr-${lang.replace("_", "-")} (sudo apt-get install tesseract-ocr-${lang.replace("_", "-")})`,
    );
  return { path: found, gzip: false };
}

/** A folder holding every language's plain traineddata, filled once (atomically, per file). */
function dataDir(langs: OcrLanguage[]): string {
  const dir = join(cacheDir(), "tessdata");
  mkdirSync(dir, { recursive: true });
  for (const lang of langs) {
    const target = join(dir, `${lang}.traineddata`);
    if (existsSync(target)) continue;
    const source = languageSource(lang);
    const part = `${target}.${process.pid}.part`;
    if (source.gzip) writeFileSync(part, gunzipSync(readFileSync(source.path)));
    else copyFileSync(source.path, part);
    renameSync(part, target);
  }
  return dir;
}

const workers = new Map<string, Promise<Tesseract.Worker>>();

function worker(langs: OcrLanguage[]): Promise<Tesseract.Worker> {
  const key = langs.join("+");
  let w = workers.get(key);
  if (!w) {
    w = Tesseract.createWorker(langs, Tesseract.OEM.LSTM_ONLY, {
      langPath: dataDir(langs),
      gzip: false,
      cacheMethod: "none",
      errorHandler: () => {},
    }).then(async (created) => {
      // Sauvola's local threshold instead of one global (Otsu) threshold: photos of pages
      // have uneven light and noise that a global threshold turns into specks read as text.
      await created.setParameters({ thresholding_method: "2" } as Partial<Tesseract.WorkerParams>);
      return created;
    });
    workers.set(key, w);
    w.catch(() => workers.delete(key));
  }
  return w;
}

/** Parses "eng", "chi_sim" or "eng+chi_sim". */
export function parseOcrLanguages(value: string): OcrLanguage[] {
  const langs = value.split("+").map((s) => s.trim());
  for (const l of langs)
    if (!(OCR_LANGUAGES as readonly string[]).includes(l))
      throw new Error(`OCR language "${l}" is not one llmfab reads (${OCR_LANGUAGES.join(", ")}; join with +)`);
  return langs as OcrLanguage[];
}

export interface OcrResult {
  text: string;
  /** Tesseract's mean word confidence, 0-100 */
  confidence: number;
  image: ImageInfo;
}

/** The text in an image; `where` names it in errors (a path, "messages.0.content.1"). */
export async function recognize(bytes: Uint8Array, where: string, langs: OcrLanguage[] = ["eng"]): Promise<OcrResult> {
  const image = checkImage(bytes, where);
  const w = await worker(langs);
  try {
    const { data } = await w.recognize(Buffer.from(bytes));
    return { text: data.text.trim(), confidence: data.confidence, image };
  } catch (e) {
    throw new ImageError(`${where}: the ${image.type} image could not be decoded (${(e as Error).message})`);
  }
}

/** Stops the OCR workers (a CLI command's end; tests). */
export async function stopOcr(): Promise<void> {
  const all = [...workers.values()];
  workers.clear();
  await Promise.all(all.map(async (w) => (await w.catch(() => null))?.terminate()));
}

/** The text read from an image as it goes into a conversation: where it came from, then the text. */
export function ocrNote(r: OcrResult, source: string, langs: OcrLanguage[]): string {
  const head = `[Text read from ${source} by OCR (${langs.join("+")}, ${r.image.width}x${r.image.height}, confidence ${Math.round(r.confidence)}%)]`;
  return r.text ? `${head}\n${r.text}` : `${head}\n(no text found)`;
}
