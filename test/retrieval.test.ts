// The search index: passages, retrieval quality on the State of the Union addresses,
// incremental updates, feeds and date words, grounded prompts, and bad input (a newer
// format, a file that is no index, a 100 kB query, a PDF without text, kill -9 mid-index).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { PDFDocument } from "pdf-lib";
import { sotuDocuments } from "../src/data/corpora.ts";
import { searchContext, sourcesFooter } from "../src/retrieval/context.ts";
import { dateWindow } from "../src/retrieval/dates.ts";
import { buildIndex, type IndexDatabase, indexStats, openIndex } from "../src/retrieval/index.ts";
import { countTokens, splitPassages } from "../src/retrieval/passages.ts";
import { search } from "../src/retrieval/search.ts";
import { searchTool } from "../src/retrieval/tool.ts";
import { llmfab, root } from "./cli-helpers.ts";
import { sotuQueries } from "./fixtures/sotu-queries.ts";
import { tempDir } from "./tmp.ts";

const tmp = () => tempDir("index");

describe("passages", () => {
  it("packs whole sentences up to the bound and keeps offsets into the text", () => {
    const text = sotuDocuments()[100] as string;
    const passages = splitPassages(text, { maxTokens: 80, overlapTokens: 20 });
    assert.ok(passages.length > 10);
    for (const p of passages) {
      assert.ok(countTokens(p.text) <= 80, `a passage of ${countTokens(p.text)} words`);
      assert.equal(text.slice(p.offset, p.offset + 30), p.text.slice(0, 30), "offset points at the passage");
    }
  });

  it("repeats the last sentences of a passage at the start of the next, within the overlap", () => {
    const sentences = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} has exactly seven words.`);
    const passages = splitPassages(sentences.join(" "), { maxTokens: 50, overlapTokens: 14 });
    for (let i = 1; i < passages.length; i++) {
      const previous = passages[i - 1]?.text ?? "";
      const shared = previous
        .split(/(?<=\.) /)
        .slice(-2)
        .join(" ");
      assert.ok(passages[i]?.text.startsWith(shared), `passage ${i} starts with the previous one's last two sentences`);
    }
    assert.equal(passages.at(-1)?.text.endsWith("Sentence number 39 has exactly seven words."), true);
  });

  it("cuts a sentence longer than a passage, and counts each CJK character as a word", () => {
    const long = `${"word ".repeat(500)}end.`;
    const passages = splitPassages(long, { maxTokens: 100, overlapTokens: 10 });
    assert.ok(passages.length >= 5 && passages.every((p) => countTokens(p.text) <= 100));
    assert.equal(countTokens("今天是星期六 and more"), 8);
  });
});

describe("search over the State of the Union addresses", () => {
  let dir: string;
  let db: IndexDatabase;
  before(async () => {
    dir = tmp();
    await buildIndex(["sotu"], join(dir, "sotu.sqlite"));
    db = openIndex(join(dir, "sotu.sqlite"), "read");
  });
  after(() => db.close());

  it("finds the address a half-remembered sentence came from in the top 5 for at least 90 of 100", () => {
    const queries = sotuQueries(100);
    const found = queries.filter((q) => search(db, q.query, { k: 5 }).some((h) => h.title === q.title)).length;
    assert.ok(found >= 90, `${found}/100 in the top 5`);
  });

  it("answers a 100 kB query from its first terms", () => {
    const hits = search(db, "taxes tariff ".repeat(8000), { k: 3 });
    assert.equal(hits.length, 3);
  });

  it("is refused with a clear error when newer than this llmfab, or when it is not an index", () => {
    const newer = join(dir, "newer.sqlite");
    const raw = new Database(newer);
    raw.exec(
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); CREATE VIRTUAL TABLE passages_fts USING fts5(body, title)",
    );
    raw.prepare("INSERT INTO meta VALUES ('format', '99')").run();
    raw.close();
    assert.throws(() => openIndex(newer, "read"), /format 99 was written by a newer llmfab/);
    writeFileSync(join(dir, "notes.txt"), "just some text, not SQLite at all ".repeat(100));
    assert.throws(() => openIndex(join(dir, "notes.txt"), "read"), /notes\.txt: not an llmfab search index/);
    assert.throws(() => openIndex(join(dir, "missing.sqlite"), "read"), /no such index/);
    const r = llmfab(["search", "--index", join(dir, "notes.txt"), "taxes"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not an llmfab search index/);
  });
});

function rss(items: { title: string; date: string; text: string; link: string }[]): string {
  const body = items
    .map(
      (i) =>
        `<item><title>${i.title}</title><link>${i.link}</link><pubDate>${new Date(i.date).toUTCString()}</pubDate><description><![CDATA[<p>${i.text}</p>]]></description></item>`,
    )
    .join("");
  return `<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>${body}</channel></rss>`;
}

const NOW = new Date("2026-11-30T15:00:00Z");

describe("feeds, updates and date words", () => {
  let dir: string;
  let index: string;
  before(async () => {
    dir = tmp();
    mkdirSync(join(dir, "docs"));
    writeFileSync(join(dir, "docs", "garden.md"), "# Garden\n\nTomatoes need sun and water every morning.\n");
    writeFileSync(join(dir, "docs", "bikes.txt"), "A bicycle chain wants oil after rain.\n");
    writeFileSync(
      join(dir, "news.xml"),
      rss([
        {
          title: "Harbour bridge opens",
          date: "2026-11-30T08:00:00Z",
          text: "The new harbour bridge opened to traffic.",
          link: "https://news.example/bridge",
        },
        {
          title: "Library extends hours",
          date: "2026-11-30T10:30:00Z",
          text: "The city library now opens until ten.",
          link: "https://news.example/library",
        },
        {
          title: "Storm last month",
          date: "2026-10-12T09:00:00Z",
          text: "A storm closed the harbour bridge works for a week.",
          link: "https://news.example/storm",
        },
      ]),
    );
    writeFileSync(
      join(dir, "feed.atom"),
      `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><entry><title>Atom entry about gliders</title><link href="https://blog.example/gliders"/><updated>2026-11-29T12:00:00Z</updated><summary>Gliders ride thermals.</summary></entry></feed>`,
    );
    index = join(dir, "news.sqlite");
    const first = await buildIndex([join(dir, "docs"), join(dir, "news.xml"), join(dir, "feed.atom")], index);
    assert.equal(first.added, 6);
  });

  it("reads RSS and Atom items with their titles, links and dates", () => {
    const db = openIndex(index, "read");
    try {
      const [glider] = search(db, "gliders thermals", { k: 1 });
      assert.equal(glider?.title, "Atom entry about gliders");
      assert.equal(glider?.link, "https://blog.example/gliders");
      assert.equal(glider?.date, "2026-11-29T12:00:00.000Z");
      const [bridge] = search(db, "harbour bridge traffic", { k: 1 });
      assert.equal(bridge?.link, "https://news.example/bridge");
      assert.match(bridge?.text ?? "", /opened to traffic/);
      assert.doesNotMatch(bridge?.text ?? "", /<p>/);
    } finally {
      db.close();
    }
  });

  it("turns today, this week and 今天 into windows on the clock's calendar, in its time zone", () => {
    const today = dateWindow("What happened today?", NOW, "UTC");
    assert.deepEqual(today, {
      since: "2026-11-30T00:00:00.000Z",
      until: "2026-12-01T00:00:00.000Z",
      words: "today",
      days: ["2026-11-30", "2026-11-30"],
    });
    const shanghai = dateWindow("今天有什么新闻？", NOW, "Asia/Shanghai");
    assert.deepEqual([shanghai?.since, shanghai?.days], ["2026-11-29T16:00:00.000Z", ["2026-11-30", "2026-11-30"]]);
    // 2026-11-30 is a Monday: this week starts today; yesterday is Sunday.
    assert.equal(dateWindow("news this week", NOW, "UTC")?.since, "2026-11-30T00:00:00.000Z");
    assert.deepEqual(dateWindow("this month", NOW, "UTC")?.days, ["2026-11-01", "2026-11-30"]);
    assert.equal(dateWindow("yesterday's news", NOW, "UTC")?.until, "2026-11-30T00:00:00.000Z");
    assert.equal(dateWindow("What is a bridge?", NOW, "UTC"), null);
  });

  it("answers what happened today from today's items only, numbered, and cites them after the answer", () => {
    const db = openIndex(index, "read");
    try {
      const found = searchContext(db, "What happened today?", { k: 3, now: NOW, timezone: "UTC" });
      assert.deepEqual(found.hits.map((h) => h.title).sort(), ["Harbour bridge opens", "Library extends hours"]);
      assert.match(found.system, /^Search results from 2026-11-30 to 2026-11-30 \(cite them as \[n\]\):/);
      assert.match(found.system, /\[1\] .*, 2026-11-30, https:\/\/news\.example\//);
      const cited = sourcesFooter("The bridge opened [2].", found.hits);
      assert.equal(cited.trim().split("\n").length, 2, "only the cited source");
      assert.match(sourcesFooter("Nothing cited.", found.hits), /\[1\][\s\S]*\[2\]/);
      const tool = searchTool(db, { now: () => NOW, timezone: "UTC" });
      const result = String(tool.run({ query: "what happened today" }));
      assert.match(result, /Harbour bridge opens/);
      assert.doesNotMatch(result, /Storm last month/);
    } finally {
      db.close();
    }
  });

  it("replaces a changed file's passages and leaves unchanged ones alone", async () => {
    writeFileSync(join(dir, "docs", "garden.md"), "# Garden\n\nCucumbers climb the trellis in July.\n");
    const second = await buildIndex([join(dir, "docs"), join(dir, "news.xml"), join(dir, "feed.atom")], index);
    assert.deepEqual([second.added, second.updated, second.unchanged], [0, 1, 5]);
    const db = openIndex(index, "read");
    try {
      assert.equal(search(db, "tomatoes").length, 0, "the old text is gone");
      assert.equal(search(db, "cucumbers trellis")[0]?.source, join(dir, "docs", "garden.md"));
      assert.equal(indexStats(db).documents, 6);
    } finally {
      db.close();
    }
  });

  it("skips a PDF without text and a feed that is not one, naming why", async () => {
    const pdf = await PDFDocument.create();
    pdf.addPage([200, 200]);
    writeFileSync(join(dir, "scan.pdf"), await pdf.save());
    writeFileSync(join(dir, "broken.rss"), "<rss><channel><item><title>x</title></item>");
    const r = await buildIndex([join(dir, "scan.pdf"), join(dir, "broken.rss")], join(dir, "other.sqlite"));
    assert.equal(r.added, 0);
    assert.match(r.skipped.find((s) => s.source.endsWith("scan.pdf"))?.reason ?? "", /no text in it/);
    assert.ok(
      r.skipped.some((s) => s.source.endsWith("broken.rss")),
      JSON.stringify(r.skipped),
    );
  });
});

describe("feeds and pages by URL", () => {
  it("indexes a feed fetched fresh each run (keeping items it has dropped) and a page's main text", async () => {
    let feed = rss([
      {
        title: "First item",
        date: "2026-11-29T08:00:00Z",
        text: "Lanterns lit on the pier.",
        link: "https://news.example/1",
      },
    ]);
    const server = createServer((req, res) => {
      if (req.url === "/feed.xml") res.writeHead(200, { "content-type": "application/rss+xml" }).end(feed);
      else if (req.url === "/page.html")
        res
          .writeHead(200, { "content-type": "text/html" })
          .end(
            "<html><head><title>Ferry times</title></head><body><nav>Home | About</nav><article><p>The ferry leaves at seven every morning from the north quay.</p></article></body></html>",
          );
      else res.writeHead(404).end("no");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const index = join(tmp(), "web.sqlite");
      const sources = [`${base}/feed.xml`, `${base}/page.html`, `${base}/missing.rss`];
      const first = await buildIndex(sources, index);
      assert.equal(first.added, 2);
      assert.match(first.skipped[0]?.reason ?? "", /HTTP 404/);
      feed = rss([
        {
          title: "Second item",
          date: "2026-11-30T08:00:00Z",
          text: "Kites over the dunes.",
          link: "https://news.example/2",
        },
      ]);
      const second = await buildIndex(sources, index);
      assert.deepEqual([second.added, second.unchanged, second.removed], [1, 1, 0]);
      const db = openIndex(index, "read");
      try {
        assert.equal(search(db, "lanterns pier")[0]?.title, "First item", "an item that left the feed stays");
        assert.equal(search(db, "kites dunes")[0]?.link, "https://news.example/2");
        const [page] = search(db, "ferry north quay");
        assert.equal(page?.title, "Ferry times");
        assert.equal(page?.link, `${base}/page.html`);
        assert.doesNotMatch(page?.text ?? "", /Home \| About/, "the page's main text only");
      } finally {
        db.close();
      }
    } finally {
      server.close();
    }
  });
});

describe("llmfab index killed mid-run", () => {
  it("leaves an index that a rerun completes, and queries answer", async () => {
    const dir = tmp();
    const data = join(dir, "addresses.jsonl");
    const docs = sotuDocuments();
    const lines = [0, 1, 2].flatMap((copy) =>
      docs.map((text, i) => JSON.stringify({ text: `${text}\ncopy ${copy}`, title: `address ${i}.${copy}` })),
    );
    writeFileSync(data, `${lines.join("\n")}\n`);
    const index = join(dir, "big.sqlite");
    const child = spawn(process.execPath, [join(root, "bin/llmfab.js"), "index", "--data", data, "--out", index], {
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Killed as soon as the index has grown past its first transactions.
    while (child.exitCode === null && !(existsSync(index) && statSync(index).size > 8e6))
      await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGKILL");
    const code = await exited;
    assert.equal(code, null, "the index was killed before it finished (raise the data size if this machine is faster)");
    const rerun = llmfab(["index", "--data", data, "--out", index]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /the index holds 699 documents/);
    const db = openIndex(index, "read");
    try {
      assert.equal(db.prepare("PRAGMA integrity_check").pluck().get(), "ok");
      assert.equal(search(db, "Louisiana purchase", { k: 2 }).length, 2);
    } finally {
      db.close();
    }
  });
});
