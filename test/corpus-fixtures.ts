// Corpora the corpus tests build: clean English documents cut from the State of the
// Union addresses, and every kind of document a cleaning pipeline must catch.
import { sotuDocuments } from "../src/data/corpora.ts";

/** Clean English documents: 12 sentences each, four per line, from the modern addresses. */
export function goodDocuments(count: number): string[] {
  const docs: string[] = [];
  for (const address of sotuDocuments().slice(200)) {
    const sentences = address.split(/(?<=[.!?])\s+/).filter((s) => s.length > 40 && /[.!?]$/.test(s));
    for (let i = 0; i + 12 <= sentences.length && docs.length < count; i += 12) {
      const lines = [0, 4, 8].map((k) => sentences.slice(i + k, i + k + 4).join(" "));
      docs.push(lines.join("\n"));
    }
    if (docs.length >= count) break;
  }
  return docs;
}

/** The same document with a few words changed: a near duplicate. */
export function nearCopy(doc: string): string {
  const words = doc.split(" ");
  for (const i of [7, Math.floor(words.length / 2), words.length - 9]) words[i] = "altered";
  return words.join(" ");
}

/** A page where the article is a small part: navigation, sidebar, cookie banner, footer. */
export function boilerplatePage(article: string): string {
  const paragraphs = article
    .split("\n")
    .map((p) => `<p>${p}</p>`)
    .join("\n");
  const links = (names: string[]) => names.map((n) => `<li><a href="/${n}">${n}</a></li>`).join("");
  return `<!doctype html><html><head><title>News of the day</title><script>var tracking = {id: 1};</script>
<style>body { color: black }</style></head><body>
<nav><ul>${links(["Home", "World", "Politics", "Business", "Sports", "Weather", "Login"])}</ul></nav>
<div class="cookie-banner">This site uses cookies. Accept all cookies to continue.</div>
<aside class="sidebar"><h3>Trending</h3><ul>${links(["Celebrity", "Recipes", "Horoscope", "Deals"])}</ul></aside>
<main><article><h1>An address to the nation</h1>
${paragraphs}
</article></main>
<footer><ul>${links(["Privacy", "Terms", "Contact", "Careers", "Advertise"])}</ul><p>Copyright 2024 Example Media</p></footer>
</body></html>`;
}

export const SPAM = Array.from({ length: 40 }, () => "Buy cheap pills now! Best prices online, click here.").join("\n");

export const LIST = Array.from({ length: 60 }, (_, i) => `- item ${i + 1}: widget`).join("\n");

export const LOREM =
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit. Sed do eiusmod tempor incididunt ut labore. " +
  "Ut enim ad minim veniam, quis nostrud exercitation. Duis aute irure dolor in reprehenderit. " +
  "Excepteur sint occaecat cupidatat non proident. Sunt in culpa qui officia deserunt mollit anim. " +
  "The rest of the page is filler text that the designer forgot to replace with the real thing.";

export const FOREIGN: Record<string, string> = {
  de:
    "Die Bundesregierung hat heute ein neues Gesetz zur Förderung der erneuerbaren Energien beschlossen. " +
    "Nach Angaben des Ministeriums sollen bis zum Ende des Jahrzehnts mehr als die Hälfte des Stroms aus Wind und Sonne stammen. " +
    "Kritiker bemängeln, dass der Ausbau der Netze nicht schnell genug vorankommt und die Kosten für die Verbraucher steigen. " +
    "Die Opposition kündigte an, im Parlament gegen das Vorhaben zu stimmen, weil es die Industrie belaste. " +
    "Umweltverbände begrüßten den Beschluss grundsätzlich, forderten aber deutlich ehrgeizigere Ziele für den Klimaschutz.",
  fr:
    "Le gouvernement a présenté ce matin un projet de loi destiné à réformer le système de retraite du pays. " +
    "Selon le ministre, cette réforme est indispensable pour garantir l'équilibre financier des caisses dans les prochaines années. " +
    "Les syndicats ont immédiatement appelé à une journée de mobilisation nationale dans toutes les grandes villes. " +
    "Plusieurs députés de la majorité ont exprimé leurs doutes sur le calendrier choisi par l'exécutif. " +
    "Le débat devrait commencer à l'Assemblée nationale au début du mois prochain et durer plusieurs semaines.",
  zh:
    "今天上午，市政府召开新闻发布会，介绍了今年城市建设的主要成果和明年的工作计划。" +
    "据介绍，全年共新建道路一百二十公里，改造老旧小区三百多个，新增公园绿地五十余处。" +
    "市长表示，明年将继续加大对教育、医疗和养老等民生领域的投入，让发展成果更多惠及全体市民。" +
    "与会记者就交通拥堵、住房价格和环境保护等问题进行了提问，有关部门负责人逐一作了回答。",
};

/**
 * Multi-paragraph documents as people write them: paragraphs of three sentences, each
 * paragraph one line, laid out with `separator` between paragraphs ("\n\n" for blank
 * lines, "\r\n\r\n" for Windows files, "\n" for one paragraph per line).
 */
export function paragraphDocuments(count: number, separator: string): string[] {
  const docs: string[] = [];
  for (const address of sotuDocuments().slice(150)) {
    const sentences = address.split(/(?<=[.!?])\s+/).filter((s) => s.length > 40 && /[.!?]$/.test(s));
    for (let i = 0; i + 15 <= sentences.length && docs.length < count; i += 15) {
      const paragraphs = [0, 3, 6, 9, 12].map((k) => sentences.slice(i + k, i + k + 3).join(" "));
      docs.push(paragraphs.join(separator));
    }
    if (docs.length >= count) break;
  }
  return docs;
}
