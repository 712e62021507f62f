// `llmfab ocr`: the text in images (Tesseract's recognizer), for reading or for a chat.
import type { Command } from "commander";
import { jsonLine } from "../io/json.ts";

interface OcrFlags {
  lang: string;
  json: boolean;
}

export function registerOcrCommands(program: Command): void {
  program
    .command("ocr")
    .description("read the text in images (PNG, JPEG, WebP, BMP, GIF, TIFF) with OCR")
    .argument("<images...>", "image files")
    .option("--lang <langs>", "languages: eng, chi_sim (Debian's tesseract-ocr-chi-sim), or eng+chi_sim", "eng")
    .option("--json", "one JSON line per image: path, text, confidence, width, height", false)
    .action(async (images: string[], o: OcrFlags) => {
      const { readFileSync } = await import("node:fs");
      const { parseOcrLanguages, recognize, stopOcr } = await import("../ocr/ocr.ts");
      const langs = parseOcrLanguages(o.lang);
      try {
        for (const path of images) {
          const r = await recognize(readFileSync(path), path, langs);
          if (o.json) process.stdout.write(jsonLine({ path, text: r.text, confidence: r.confidence, ...r.image }));
          else console.log(images.length > 1 ? `== ${path}\n${r.text}` : r.text);
        }
      } finally {
        await stopOcr();
      }
    });
}
