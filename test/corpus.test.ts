// The corpus pipeline: each cleaning step keeps and removes what it should, on corpora
// built here; sources (JSONL, gzip, Parquet, PDF, URLs) read right and bad ones skipped
// and counted; the report counts it all; a run killed midway resumes to the same output.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { DedupIndex, KeySet } from "../src/data/dedup-index.ts";
import { cachedPath } from "../src/data/download.ts";
import { parseRecipe, type Recipe } from "../src/data/recipe.ts";
import { type CorpusReport, reportMarkdown } from "../src/data/report.ts";
import { runCorpus } from "../src/data/run.ts";
import { checkSources, readSources, type SourceEvent, type SourceSpec } from "../src/data/sources.ts";
import { c4Options, c4Step } from "../src/data/steps/c4.ts";
import { bandKeys, minhashSignature, nearDedupOptions } from "../src/data/steps/dedup.ts";
import { finewebOptions, finewebStep } from "../src/data/steps/fineweb.ts";
import {
  gopherQualityOptions,
  gopherQualityStep,
  gopherRepetitionOptions,
  gopherRepetitionStep,
} from "../src/data/steps/gopher.ts";
import { htmlOptions, htmlStep } from "../src/data/steps/html.ts";
import { languageOptions, languageStep } from "../src/data/steps/language.ts";
import { normalizeStep } from "../src/data/steps/normalize.ts";
import { PII_STAND_INS, piiOptions, piiStep } from "../src/data/steps/pii.ts";
import { Doc, type DocumentStep, type Verdict } from "../src/data/steps/step.ts";
import { snakeCaseKeys } from "../src/io/json.ts";
import {
  boilerplatePage,
  FOREIGN,
  goodDocuments,
  LIST,
  LOREM,
  nearCopy,
  paragraphDocuments,
  SPAM,
} from "./corpus-fixtures.ts";
import { rng } from "./helpers.ts";
import { tempDir } from "./tmp.ts";

const root = new URL("..", import.meta.url).pathname;
const good = goodDocuments(16);

function run(step: DocumentStep, text: string, format: "text" | "html" = "text"): { verdict: Verdict; doc: Doc } {
  const doc = new Doc(text, format, {});
  return { verdict: step.run(doc), doc };
}

const removedFor = (step: DocumentStep, text: string) => {
  const { verdict } = run(step, text);
  return verdict.keep ? null : verdict.reason;
};

describe("cleaning steps", () => {
  test("normalize: NFC, newlines, control characters, unpaired surrogates; empty documents go", () => {
    const step = normalizeStep();
    const { doc } = run(step, "Cafe\u0301 \u0007ok\r\nnext\u0000 line\ud800  \n");
    assert.equal(doc.text, "Café ok\nnext line");
    assert.equal(removedFor(step, " \u0000\r\n\t "), "empty");
  });

  test("html: the article stays, navigation, sidebar, cookie banner, footer and scripts go", () => {
    const step = htmlStep(htmlOptions.parse({}));
    const { verdict, doc } = run(step, boilerplatePage(good[0] as string), "html");
    assert.ok(verdict.keep);
    const firstSentence = (good[0] as string).split(/(?<=\.)\s/)[0] as string;
    assert.ok(doc.text.includes(firstSentence), "the article's first sentence");
    for (const junk of ["Horoscope", "Careers", "uses cookies", "tracking", "Login", "color: black"])
      assert.ok(!doc.text.includes(junk), `"${junk}" should be gone`);
    assert.equal(doc.meta.title, "News of the day");
    assert.equal(doc.text.split("\n").length >= 3, true, "paragraphs stay lines");
    // Plain text is left alone; text that starts like a page is sniffed as HTML.
    assert.equal(run(step, "a <b> plain</b> text").doc.text, "a <b> plain</b> text");
    assert.ok(!run(step, `<html><body><p>${good[1]}</p></body></html>`).doc.text.includes("<p>"));
  });

  test("language: English kept and labelled; German, French and Chinese removed; a threshold", async () => {
    const started = async (step: DocumentStep) => {
      await step.init?.();
      return step;
    };
    const step = await started(languageStep(languageOptions.parse({})));
    const { verdict, doc } = run(step, good[0] as string);
    assert.ok(verdict.keep);
    assert.equal(doc.meta.language, "en");
    assert.ok((doc.meta.language_score as number) >= 0.5);
    for (const [lang, text] of Object.entries(FOREIGN)) assert.equal(removedFor(step, text), `language_${lang}`);
    const german = await started(languageStep(languageOptions.parse({ languages: ["de"] })));
    assert.equal(removedFor(german, FOREIGN.de as string), null);
    const strict = await started(languageStep(languageOptions.parse({ threshold: 0.99, database: "medium" })));
    assert.equal(removedFor(strict, good[0] as string), "low_confidence");
  });

  test("gopher-repetition: spam with repeated lines and n-grams goes, prose stays", () => {
    const step = gopherRepetitionStep(gopherRepetitionOptions.parse({}));
    assert.equal(removedFor(step, SPAM), "dup_line_frac");
    for (const doc of good) assert.equal(removedFor(step, doc), null);
    // Repeated phrases within lines: caught by the n-gram rules, not the line rules.
    const phrases = Array.from({ length: 30 }, (_, i) => `Line ${i} says that the very best deals are here today.`);
    assert.match(removedFor(step, phrases.join("\n")) ?? "", /gram/);
  });

  test("gopher-quality: short documents, symbol soup, missing stop words; prose stays", () => {
    const step = gopherQualityStep(gopherQualityOptions.parse({}));
    assert.equal(removedFor(step, "Too short to be a document."), "short_doc");
    const symbols = Array.from({ length: 80 }, (_, i) => `#tag${i} ${i}`).join(" ");
    assert.equal(removedFor(step, symbols), "too_many_hashes");
    const noStops = Array.from({ length: 60 }, (_, i) => `Alpha beta gamma delta ${i}.`).join(" ");
    assert.equal(removedFor(step, noStops), "not_enough_stop_words");
    const numbers = Array.from({ length: 100 }, (_, i) => `${i * 7919} ${i} 0.${i}`).join(" ");
    assert.equal(removedFor(step, `${numbers} the and of to`), "below_avg_word_length");
    for (const doc of good) assert.equal(removedFor(step, doc), null);
  });

  test("c4: lorem ipsum and code go; JavaScript and policy lines are dropped from kept documents", () => {
    const step = c4Step(c4Options.parse({}));
    assert.equal(removedFor(step, LOREM), "lorem_ipsum");
    assert.equal(removedFor(step, `${good[0]}\nfunction f() { return 1; }`), "curly_bracket");
    assert.equal(removedFor(step, "One. Two. Three."), "too_few_sentences");
    const withJunk = `${good[0]}\nPlease enable JavaScript to view the comments.\nRead our privacy policy here.\nShort line`;
    const { verdict, doc } = run(step, withJunk);
    assert.ok(verdict.keep);
    assert.equal(doc.text, good[0]);
  });

  test("fineweb: lists of short lines and pages without punctuation go; prose stays", () => {
    const step = finewebStep(finewebOptions.parse({}));
    assert.equal(removedFor(step, LIST), "line_punct_ratio");
    const shortLines = Array.from({ length: 40 }, (_, i) => `Item ${i} is here.`).join("\n");
    assert.equal(removedFor(step, shortLines), "short_line_ratio");
    assert.equal(removedFor(step, `${good[0]}\n${(good[0] as string).split("\n")[0]}`), "char_dup_ratio");
    for (const doc of good) assert.equal(removedFor(step, doc), null);
  });

  test("pii: emails, phone numbers and IP addresses are replaced; other numbers are not", () => {
    const step = piiStep(piiOptions.parse({}));
    const text =
      "Write to jane.doe@mail.example.org or call (555) 123-4567 or +44 20 7946 0958. " +
      "The server at 10.1.20.3 and fe80:0:0:0:200:f8ff:fe21:67cf answered. In 1999-2001 we spent $1.5 billion, 3.14 of it on pie.";
    const { verdict, doc } = run(step, text);
    assert.ok(verdict.keep);
    for (const secret of ["jane.doe", "123-4567", "7946", "10.1.20.3", "f8ff"])
      assert.ok(!doc.text.includes(secret), secret);
    for (const standIn of Object.values(PII_STAND_INS)) assert.ok(doc.text.includes(standIn), standIn);
    assert.ok(doc.text.includes("1999-2001") && doc.text.includes("$1.5 billion") && doc.text.includes("3.14"));
    assert.equal(doc.meta.pii_replaced, 5);
  });
});

describe("layout: blank lines and CRLF are not content", () => {
  const layouts = { "blank lines": "\n\n", "CRLF blank lines": "\r\n\r\n", "one paragraph a line": "\n" };
  const texts = Object.fromEntries(Object.entries(layouts).map(([name, sep]) => [name, paragraphDocuments(40, sep)]));

  test("every document step decides the same for a text in any of the layouts", async () => {
    const steps: DocumentStep[] = [
      gopherRepetitionStep(gopherRepetitionOptions.parse({})),
      gopherQualityStep(gopherQualityOptions.parse({})),
      c4Step(c4Options.parse({})),
      finewebStep(finewebOptions.parse({})),
      piiStep(piiOptions.parse({})),
      languageStep(languageOptions.parse({})),
    ];
    for (const step of steps) {
      await step.init?.();
      const verdicts = Object.values(texts).map((docs) => docs.map((d) => removedFor(step, d)));
      for (const v of verdicts.slice(1)) assert.deepEqual(v, verdicts[0], step.name);
      const kept = (verdicts[0] ?? []).filter((v) => v === null).length;
      assert.ok(kept >= 36, `${step.name} kept ${kept} of 40 prose documents: ${verdicts[0]}`);
    }
  });

  test("the default recipe keeps as many documents in each layout, and c4 keeps the paragraph breaks", async () => {
    const dir = tempDir("layout");
    const kept: Record<string, number> = {};
    for (const [name, docs] of Object.entries(texts)) {
      const folder = join(dir, name.replace(/\W+/g, "-"));
      mkdirSync(join(folder, "docs"), { recursive: true });
      docs.forEach((d, i) => {
        writeFileSync(join(folder, "docs", `${i}.txt`), d);
      });
      await runCorpus({ recipe: recipeFor(folder), out: join(folder, "out"), threads: 1 });
      const out = outputTexts(join(folder, "out"));
      kept[name] = out.length;
      if (name === "blank lines")
        assert.ok(
          out.every((t) => t.split("\n\n").length === 5),
          "paragraphs kept",
        );
    }
    assert.deepEqual(new Set(Object.values(kept)).size, 1, JSON.stringify(kept));
    assert.ok((kept["blank lines"] ?? 0) >= 36, JSON.stringify(kept));
  });
});

describe("deduplication", () => {
  const o = nearDedupOptions.parse({});

  function shingles(text: string): Set<string> {
    const words = text
      .toLowerCase()
      .replace(/[\p{P}\p{S}]+/gu, "")
      .split(/\s+/)
      .filter(Boolean);
    return new Set(words.slice(0, -4).map((_, i) => words.slice(i, i + 5).join(" ")));
  }

  test("MinHash estimates Jaccard similarity of 5-gram shingles", () => {
    const a = good[0] as string;
    const words = a.split(" ");
    // Documents sharing a growing tail of words: true similarity from 0 to 1.
    for (const keep of [0.3, 0.6, 0.9]) {
      const cut = Math.floor(words.length * (1 - keep));
      const b = [...Array.from({ length: cut }, (_, i) => `other${i}`), ...words.slice(cut)].join(" ");
      const sa = shingles(a);
      const sb = shingles(b);
      const truth = [...sa].filter((s) => sb.has(s)).length / new Set([...sa, ...sb]).size;
      const x = minhashSignature(a, o);
      const y = minhashSignature(b, o);
      const estimate = x.filter((v, i) => v === y[i]).length / x.length;
      assert.ok(Math.abs(estimate - truth) < 0.12, `keep ${keep}: estimate ${estimate} vs ${truth}`);
    }
  });

  test("a near copy shares a band; different documents do not", () => {
    const keys = (t: string) => bandKeys(minhashSignature(t, o), o);
    const index = DedupIndex.empty(1);
    assert.equal(index.seen(0, keys(good[0] as string)), false);
    assert.equal(index.seen(0, keys(nearCopy(good[0] as string))), true);
    for (const doc of good.slice(1)) assert.equal(index.seen(0, keys(doc)), false);
  });

  test("the key set grows, answers membership and survives a save and load", () => {
    const set = new KeySet();
    const r = rng(3);
    const keys = Array.from({ length: 5000 }, () => [Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32)] as const);
    for (const [hi, lo] of keys) assert.equal(set.add(hi, lo), true);
    assert.equal(set.add(0, 0), true);
    assert.equal(set.add(0, 0), false);
    const loaded = DedupIndex.fromBytes(new DedupIndex([set]).toBytes()).sets[0] as KeySet;
    assert.equal(loaded.size, 5001);
    for (const [hi, lo] of keys) assert.ok(loaded.has(hi, lo));
    assert.ok(!loaded.has(1, 2));
  });
});

/** A corpus folder with every case the pipeline must handle. */
function buildCorpus(): { dir: string; pii: string } {
  const dir = tempDir("corpus");
  const docs = join(dir, "docs");
  mkdirSync(docs);
  for (let i = 0; i < 10; i++) writeFileSync(join(docs, `good-${i}.txt`), good[i] as string);
  writeFileSync(join(docs, "exact-copy.md"), good[0] as string);
  writeFileSync(join(docs, "near-copy.txt"), nearCopy(good[1] as string));
  writeFileSync(join(docs, "page.html"), boilerplatePage(good[10] as string));
  writeFileSync(join(docs, "spam.txt"), SPAM);
  writeFileSync(join(docs, "list.md"), LIST);
  writeFileSync(join(docs, "lorem.txt"), LOREM);
  const pii = (good[11] as string).replace(". ", ". You can reach me at someone@example.net or 555-867-5309. ");
  writeFileSync(join(docs, "pii.txt"), pii);
  const garbage = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) % 256));
  writeFileSync(join(docs, "garbage.txt"), garbage);
  symlinkSync(join(dir, "gone.txt"), join(docs, "unreadable.txt")); // a dangling link: cannot be read
  writeFileSync(join(docs, "latin1.txt"), Buffer.from("Caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9 ".repeat(50), "latin1"));
  const jsonl = [
    JSON.stringify({ text: FOREIGN.de, id: 1 }),
    JSON.stringify({ text: FOREIGN.fr, id: 2 }),
    "{ this is not json",
    JSON.stringify({ text: FOREIGN.zh, id: 3 }),
    JSON.stringify({ body: "no text field" }),
    JSON.stringify({ text: good[12] }),
  ];
  const lines = Buffer.concat([
    Buffer.from(`${jsonl.join("\n")}\n`),
    Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]), // invalid UTF-8 line
  ]);
  writeFileSync(join(docs, "mixed.jsonl.gz"), gzipSync(lines));
  return { dir, pii };
}

function recipeFor(dir: string, extra: Record<string, unknown> = {}): Recipe {
  return parseRecipe({ sources: [join(dir, "docs")], val_fraction: 0.2, shard_docs: 3, ...extra }, "test recipe");
}

function outputFiles(out: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const split of ["train", "val"])
    if (existsSync(join(out, split)))
      for (const name of readdirSync(join(out, split)))
        files[`${split}/${name}`] = readFileSync(join(out, split, name), "utf8");
  return files;
}

const outputTexts = (out: string) =>
  Object.values(outputFiles(out))
    .flatMap((f) => f.trim().split("\n"))
    .map((l) => (JSON.parse(l) as { text: string }).text);

const step = (r: CorpusReport, name: string) => r.steps.find((s) => s.name === name) as CorpusReport["steps"][number];

describe("llmfab corpus pipeline", () => {
  const corpus = buildCorpus();
  const out1 = join(corpus.dir, "out1");
  let report: CorpusReport;

  test("the default pipeline keeps the clean documents and removes the rest, and the report counts it", async () => {
    report = await runCorpus({ recipe: recipeFor(corpus.dir), out: out1, threads: 1 });
    const texts = outputTexts(out1);
    // 10 good (one exact and one near copy removed), the page's article, the scrubbed PII document, the JSONL one.
    assert.equal(texts.length, 13);
    assert.equal(report.output.train.documents + report.output.val.documents, 13);
    assert.ok(report.output.val.documents > 0 && report.output.train.documents > 0);
    assert.equal(report.input.documents, 21);
    assert.equal(report.skipped.count, 6, JSON.stringify(report.skipped.sources));
    const skipped = report.skipped.sources.map((s) => `${s.source} ${s.reason}`).join("\n");
    assert.match(skipped, /garbage\.txt.*binary/);
    assert.match(skipped, /latin1\.txt.*invalid UTF-8/);
    assert.match(skipped, /unreadable\.txt cannot read: ENOENT/);
    assert.match(skipped, /mixed\.jsonl\.gz:3 .*invalid JSON/);
    assert.match(skipped, /mixed\.jsonl\.gz:5 .*no string "text" field/);
    assert.match(skipped, /mixed\.jsonl\.gz:7 .*invalid UTF-8/);

    assert.equal(step(report, "exact-dedup").removed.duplicate?.count, 1);
    assert.equal(step(report, "near-dedup").removed.duplicate?.count, 1);
    assert.match(step(report, "near-dedup").removed.duplicate?.examples[0]?.source ?? "", /near-copy/);
    const language = step(report, "language").removed;
    for (const lang of ["de", "fr", "zh"]) assert.equal(language[`language_${lang}`]?.count, 1, lang);
    assert.equal(step(report, "gopher-repetition").removed.dup_line_frac?.count, 1);
    assert.equal(step(report, "c4").removed.lorem_ipsum?.count, 1);
    // The list: one reason or another, it does not get through.
    assert.ok(!texts.some((t) => t.includes("widget")));
    assert.equal(step(report, "pii").modified, 1);
    assert.ok(
      texts.includes(
        corpus.pii.replace("someone@example.net", PII_STAND_INS.email).replace("555-867-5309", PII_STAND_INS.phone),
      ),
    );
    assert.ok(
      texts.some((t) => t.startsWith("An address to the nation")),
      "the page's article, with its heading",
    );
    assert.equal(report.languages.en, 13);
    // Every step's books balance.
    for (const s of report.steps) {
      const removed = Object.values(s.removed).reduce((n, r) => n + r.count, 0);
      assert.equal(s.docsIn - s.docsOut, removed, s.name);
    }
    const markdown = readFileSync(join(out1, "report.md"), "utf8");
    assert.equal(markdown, `${reportMarkdown(report)}\n`);
    assert.match(markdown, /\| near-dedup \| 14 \| 13 \| 1 /);
    assert.match(markdown, /Skipped sources/);
    assert.deepEqual(JSON.parse(readFileSync(join(out1, "report.json"), "utf8")), snakeCaseKeys(report));
  });

  test("two worker threads write the same shards as one thread", async () => {
    const out2 = join(corpus.dir, "out2");
    await runCorpus({ recipe: recipeFor(corpus.dir), out: out2, threads: 2 });
    assert.deepEqual(outputFiles(out2), outputFiles(out1));
  });

  test("a run that dies midway resumes to exactly the uninterrupted run's output", async () => {
    const out3 = join(corpus.dir, "out3");
    const recipe = recipeFor(corpus.dir);
    let calls = 0;
    await assert.rejects(
      runCorpus({
        recipe,
        out: out3,
        threads: 1,
        onProgress: () => {
          // Die after the first checkpoint, with more processed but not yet committed.
          if (++calls === 1 && existsSync(join(out3, ".state", "state.json"))) throw new Error("simulated crash");
        },
      }),
      /simulated crash/,
    );
    const state = JSON.parse(readFileSync(join(out3, ".state", "state.json"), "utf8")) as {
      consumed: number;
      done: boolean;
    };
    assert.ok(state.consumed > 0 && !state.done, "a checkpoint was written before the crash");
    const resumed = await runCorpus({ recipe, out: out3, threads: 2 });
    assert.deepEqual(outputFiles(out3), outputFiles(out1));
    assert.deepEqual({ ...resumed, seconds: 0 }, { ...report, seconds: 0 });
    // Running it again finds the run complete and changes nothing.
    await runCorpus({ recipe, out: out3, threads: 1 });
    assert.deepEqual(outputFiles(out3), outputFiles(out1));
  });

  test("a different recipe or a foreign folder is refused, not overwritten", async () => {
    await assert.rejects(
      runCorpus({ recipe: recipeFor(corpus.dir, { val_fraction: 0.3 }), out: out1, threads: 1 }),
      /holds a run of a different recipe/,
    );
    const foreign = join(corpus.dir, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "mine");
    await assert.rejects(runCorpus({ recipe: recipeFor(corpus.dir), out: foreign, threads: 1 }), /not empty/);
    assert.equal(readFileSync(join(foreign, "notes.txt"), "utf8"), "mine");
  });
});

describe("corpus recipes", () => {
  test("defaults, options and errors that say where", () => {
    const r = parseRecipe({ sources: ["sotu"] }, "r.yaml");
    assert.equal(r.steps.length, 10);
    assert.equal((r.steps[2] as { options: { threshold: number } }).options.threshold, 0.5);
    const custom = parseRecipe(
      { sources: ["sotu"], steps: ["normalize", { language: { languages: ["de"] } }] },
      "r.yaml",
    );
    assert.deepEqual((custom.steps[1] as { options: { languages: string[] } }).options.languages, ["de"]);
    assert.throws(
      () => parseRecipe({ sources: ["sotu"], steps: ["normalize", "magic"] }, "r.yaml"),
      /r\.yaml: steps\.1: unknown step "magic"/,
    );
    assert.throws(
      () => parseRecipe({ sources: ["sotu"], steps: [{ language: { threshold: 2 } }] }, "r.yaml"),
      /r\.yaml: steps\.0 \(language\.threshold\)/,
    );
    assert.throws(() => parseRecipe({ sources: [] }, "r.yaml"), /r\.yaml: sources/);
    assert.throws(() => parseRecipe({ sources: ["sotu"], shards: 3 }, "r.yaml"), /r\.yaml: .*shards/);
    assert.throws(() => parseRecipe({ sources: ["sotu"], steps: ["pii", "pii"] }, "r.yaml"), /"pii" appears twice/);
  });
});

async function collect(specs: SourceSpec[], textField = "text"): Promise<SourceEvent[]> {
  const events: SourceEvent[] = [];
  for await (const e of readSources(specs, { textField, retries: 2, backoffMs: 1 })) events.push(e);
  return events;
}

describe("corpus sources", () => {
  const dir = tempDir("sources");

  test("Parquet: the text column, row group by row group; a missing column is reported", async () => {
    const texts = Array.from({ length: 25 }, (_, i) => `document number ${i}`);
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: "id", data: texts.map((_, i) => i), type: "INT32" },
        { name: "content", data: texts, type: "STRING" },
      ],
      rowGroupSize: 10,
    });
    const path = join(dir, "shard.parquet");
    writeFileSync(path, new Uint8Array(buffer));
    const events = await collect([path], "content");
    assert.deepEqual(
      events.map((e) => (e.kind === "doc" ? e.text : e.reason)),
      texts,
    );
    const missing = await collect([path], "text");
    assert.equal(missing.length, 1);
    assert.match((missing[0] as { reason: string }).reason, /no column "text" \(columns: id, content\)/);
  });

  test("PDF: the text of every page", async () => {
    const pdf = await PDFDocument.create();
    const font = await pdf.embedFont(StandardFonts.Helvetica);
    for (const line of ["The first page speaks of ships.", "The second page speaks of sealing wax."])
      pdf.addPage().drawText(line, { x: 50, y: 700, size: 14, font });
    writeFileSync(join(dir, "doc.pdf"), await pdf.save());
    const [event] = await collect([join(dir, "doc.pdf")]);
    assert.equal(event?.kind, "doc");
    const text = (event as { text: string }).text;
    assert.match(text, /The first page speaks of ships\./);
    assert.match(text, /The second page speaks of sealing wax\./);
  });

  test("JSON arrays, built-in corpora, unsupported files", async () => {
    writeFileSync(join(dir, "array.json"), JSON.stringify([{ text: "one" }, { text: "two" }]));
    writeFileSync(join(dir, "image.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const events = await collect([join(dir, "array.json"), join(dir, "image.png")]);
    assert.deepEqual(
      events.map((e) => e.kind),
      ["doc", "doc", "skip"],
    );
    assert.match((events[2] as { reason: string }).reason, /unsupported file type "\.png"/);
    const sotu = await collect(["sotu"]);
    assert.equal(sotu.length, 233);
  });

  describe("URLs", () => {
    const body = (good.slice(0, 3) as string[]).join("\n\n");
    const sha = createHash("sha256").update(body).digest("hex");
    let server: Server;
    let base = "";
    const hits: Record<string, number> = {};
    const ranges: string[] = [];

    test("start a local server", async () => {
      process.env.LLMFAB_CACHE = tempDir("cache");
      server = createServer((req, res) => {
        const path = req.url ?? "";
        hits[path] = (hits[path] ?? 0) + 1;
        if (path === "/flaky.txt" && hits[path] === 1) {
          res.writeHead(503).end();
          return;
        }
        if (path === "/missing.txt") {
          res.writeHead(404).end();
          return;
        }
        const range = req.headers.range;
        if (range) {
          ranges.push(range);
          const start = Number(/bytes=(\d+)-/.exec(range)?.[1]);
          res
            .writeHead(206, { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` })
            .end(Buffer.from(body).subarray(start));
          return;
        }
        res.writeHead(200).end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    test("downloads once into the cache, checks the checksum, retries a failing server", async () => {
      const events = await collect([{ url: `${base}/ok.txt`, sha256: sha }, `${base}/flaky.txt`]);
      assert.deepEqual(
        events.map((e) => (e.kind === "doc" ? [e.source, e.text.length] : e.reason)),
        [
          [`${base}/ok.txt`, body.length],
          [`${base}/flaky.txt`, body.length],
        ],
      );
      assert.equal(hits["/flaky.txt"], 2, "one failure, one retry");
      await collect([{ url: `${base}/ok.txt`, sha256: sha }]);
      assert.equal(hits["/ok.txt"], 1, "the second read comes from the cache");
    });

    test("resumes a partial download with a range request", async () => {
      const url = `${base}/partial.txt`;
      const part = `${cachedPath(url, join(process.env.LLMFAB_CACHE as string, "downloads"))}.part`;
      mkdirSync(join(part, ".."), { recursive: true });
      writeFileSync(part, Buffer.from(body).subarray(0, 1000));
      const [event] = await collect([{ url, sha256: sha }]);
      assert.equal((event as { text: string }).text, body);
      assert.deepEqual(ranges, ["bytes=1000-"]);
    });

    test("a URL list; a wrong checksum, a missing file and an unreachable host are skipped with reasons", async () => {
      // A port nothing listens on: open one, then close it.
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const list = join(dir, "urls.txt");
      writeFileSync(
        list,
        `# sources\n${base}/listed.txt ${sha}\n${base}/bad-sum.txt ${"0".repeat(64)}\n${base}/missing.txt\nhttp://127.0.0.1:${port}/offline.txt\n`,
      );
      const events = await collect([{ urls: list }]);
      assert.equal(events[0]?.kind, "doc");
      const reasons = events.slice(1).map((e) => (e.kind === "skip" ? e.reason : "doc"));
      assert.match(reasons[0] as string, /sha256 [0-9a-f]{64} does not match/);
      assert.match(reasons[1] as string, /HTTP 404/);
      assert.match(
        reasons[2] as string,
        new RegExp(`cannot reach 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): offline\\?`),
      );
      writeFileSync(list, "not a url\n");
      await assert.rejects(collect([{ urls: list }]), /urls\.txt:1: expected "URL \[sha256\]"/);
      assert.throws(() => checkSources([{ urls: list }]), /urls\.txt:1: expected "URL \[sha256\]"/);
    });

    test("stop the server", () => {
      server.close();
    });
  });
});

describe("llmfab corpus command", () => {
  function llmfab(args: string[]) {
    const r = spawnSync(process.execPath, [join(root, "bin/llmfab.js"), "--threads", "1", ...args], {
      encoding: "utf8",
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  test("cleans a folder, and llmfab tokenize reads its training shards", () => {
    const dir = tempDir("corpus-cli");
    mkdirSync(join(dir, "in"));
    for (const [i, d] of good.slice(0, 6).entries()) writeFileSync(join(dir, "in", `${i}.txt`), d);
    writeFileSync(join(dir, "in", "copy.txt"), good[0] as string);
    const r = llmfab(["corpus", "--source", join(dir, "in"), "--out", join(dir, "clean"), "--val-fraction", "0.3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| exact-dedup \| 7 \| 6 \| 1 /);
    const t = llmfab([
      "tokenize",
      "--tokenizer",
      "gpt2",
      "--data",
      join(dir, "clean", "train"),
      "--out",
      join(dir, "tokens"),
      "--val-fraction",
      "0.3",
    ]);
    assert.equal(t.code, 0, t.stderr);
    assert.ok(existsSync(join(dir, "tokens")));
  });

  test("killed with SIGKILL midway, a rerun of the same command finishes with the uninterrupted output", async () => {
    const dir = tempDir("corpus-kill");
    const args = (out: string) => [
      "corpus",
      "--source",
      "sotu",
      "--out",
      join(dir, out),
      "--shard-docs",
      "10",
      "--val-fraction",
      "0.1",
    ];
    assert.equal(llmfab(args("whole")).code, 0);
    const child = spawn(process.execPath, [join(root, "bin/llmfab.js"), "--threads", "2", ...args("killed")], {
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Kill it as soon as the first checkpoint is on disk.
    const state = join(dir, "killed", ".state", "state.json");
    while (!existsSync(state) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGKILL");
    await exited;
    const resumed = llmfab(args("killed"));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(outputFiles(join(dir, "killed")), outputFiles(join(dir, "whole")));
    assert.ok(Object.keys(outputFiles(join(dir, "whole"))).length > 10);
  });

  test("bad input: no sources, a missing path, a bad recipe", () => {
    const dir = tempDir("corpus-cli");
    const oneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    };
    oneLine(llmfab(["corpus", "--out", join(dir, "o")]), /give --recipe FILE, or --source/);
    oneLine(
      llmfab(["corpus", "--source", join(dir, "nope"), "--out", join(dir, "o")]),
      /nope: no such file or directory/,
    );
    writeFileSync(join(dir, "r.yaml"), "sources: [sotu]\nsteps: [normalize, magic]\n");
    oneLine(
      llmfab(["corpus", "--recipe", join(dir, "r.yaml"), "--out", join(dir, "o")]),
      /r\.yaml: steps\.1: unknown step "magic"/,
    );
  });
});
