// Synthetic image conversations for teaching a vision model (`llmfab synth --vision`):
// counting, naming and colouring shapes, saying where a shape is, reading a printed
// number, and MNIST's handwritten digits. Each conversation is OpenAI chat with an
// image_url part (a PNG data URL) and the answer as the assistant turn; meta.task names
// the task. The held-out split asks about combinations training never shows: shapes in
// colours they never have in training, numbers never printed, MNIST's held-out digits.
import { type ChatMessage, IMAGE_PLACEHOLDER } from "../infer/chat.ts";
import { Rng } from "../nn/random.ts";
import { MNIST_SIZE, mnistDigits, shiftDigit } from "../vision/mnist.ts";
import {
  COLOUR_NAMES,
  type Colour,
  drawShapes,
  drawText,
  grayPng,
  type Item,
  pngDataUrl,
  SHAPES,
  type Shape,
} from "../vision/scenes.ts";
import { shuffle } from "./sft.ts";

export const VISION_TASKS = ["count", "shape", "colour", "where", "number", "mnist"] as const;
export type VisionTask = (typeof VISION_TASKS)[number];

/** Pixels of the rendered pictures (the model resizes them to its own size). */
const PICTURE = 64;

export interface VisionConversation {
  /** the user's question with the image, then the answer */
  messages: ChatMessage[];
  /** the task, and for pictures of shapes what they hold (shape and colour of each) */
  meta: { task: VisionTask; shapes?: { shape: Shape; colour: Colour }[] };
}

/** Shape and colour pairs held out of training: every shape has one colour it is never shown in. */
function heldOutPair(shape: Shape, colour: Colour): boolean {
  return (SHAPES.indexOf(shape) + COLOUR_NAMES.indexOf(colour)) % 4 === 0;
}

/** Printed numbers held out of training. */
function heldOutNumber(n: number): boolean {
  return n % 7 === 3;
}

const QUESTIONS: Record<Exclude<VisionTask, "mnist">, string[]> = {
  count: ["How many shapes are in the picture?", "How many shapes do you see?", "Count the shapes."],
  shape: ["What shape is this?", "Which shape is in the picture?", "Name the shape."],
  colour: ["What colour is the shape?", "Which colour is it?", "What colour do you see?"],
  where: ["Where is the shape?", "Where in the picture is the shape?"],
  number: ["What number is written here?", "Read the number.", "Which number is this?"],
};
const MNIST_QUESTIONS = ["Which digit is this?", "What digit is written here?", "Read the handwritten digit."];

/** A random shape and colour, from the held-out pairs or from the others. */
function pickPair(rng: Rng, heldout: boolean): [Shape, Colour] {
  for (;;) {
    const shape = SHAPES[rng.int(SHAPES.length)] as Shape;
    const colour = COLOUR_NAMES[rng.int(COLOUR_NAMES.length)] as Colour;
    if (heldOutPair(shape, colour) === heldout) return [shape, colour];
  }
}

const CORNERS = [
  ["top left", 0, 0],
  ["top right", 1, 0],
  ["bottom left", 0, 1],
  ["bottom right", 1, 1],
] as const;

/** Up to `count` shapes that do not overlap, each in a cell of a 3 x 3 grid, jittered. */
function scatter(count: number, rng: Rng, heldout: boolean): Item[] {
  const cells = shuffle(9, rng);
  const cell = PICTURE / 3;
  return cells.slice(0, count).map((c) => {
    const [shape, colour] = pickPair(rng, heldout);
    const r = cell * (0.28 + 0.12 * rng.next());
    const jitter = () => (rng.next() - 0.5) * (cell - 2 * r);
    return {
      shape,
      colour,
      r,
      x: (c % 3) * cell + cell / 2 + jitter(),
      y: Math.floor(c / 3) * cell + cell / 2 + jitter(),
    };
  });
}

function conversation(
  task: VisionTask,
  question: string,
  png: Buffer,
  answer: string,
  items?: Item[],
): VisionConversation {
  return {
    messages: [
      { role: "user", content: `${question}${IMAGE_PLACEHOLDER}`, images: [pngDataUrl(png)] },
      { role: "assistant", content: answer },
    ],
    meta: { task, ...(items ? { shapes: items.map(({ shape, colour }) => ({ shape, colour })) } : {}) },
  };
}

/** One synthetic picture question of a task. */
function sceneQuestion(task: Exclude<VisionTask, "mnist">, rng: Rng, heldout: boolean): VisionConversation {
  const question = QUESTIONS[task][rng.int(QUESTIONS[task].length)] as string;
  if (task === "count") {
    const items = scatter(1 + rng.int(4), rng, heldout);
    return conversation(task, question, drawShapes(items, PICTURE), String(items.length), items);
  }
  if (task === "number") {
    let n: number;
    do n = rng.int(100);
    while (heldOutNumber(n) !== heldout);
    return conversation(task, question, drawText(String(n), PICTURE), String(n));
  }
  if (task === "where") {
    const [name, cx, cy] = CORNERS[rng.int(CORNERS.length)] as (typeof CORNERS)[number];
    const [shape, colour] = pickPair(rng, heldout);
    const r = PICTURE * (0.12 + 0.06 * rng.next());
    const at = (c: number) => PICTURE * (0.25 + 0.5 * c) + (rng.next() - 0.5) * PICTURE * 0.1;
    const items = [{ shape, colour, r, x: at(cx), y: at(cy) }];
    return conversation(task, question, drawShapes(items, PICTURE), name, items);
  }
  const [item] = scatter(1, rng, heldout) as [Item];
  item.r *= 1.6;
  item.x = PICTURE / 2 + (item.x % (PICTURE / 3)) - PICTURE / 6;
  item.y = PICTURE / 2 + (item.y % (PICTURE / 3)) - PICTURE / 6;
  const answer = task === "shape" ? item.shape : item.colour;
  return conversation(task, question, drawShapes([item], PICTURE), answer, [item]);
}

/** Training digits are moved by up to this many pixels each way (augmentation); held-out ones are not. */
const MNIST_SHIFT = 2;

/**
 * MNIST digits as "which digit is this?" conversations (28 x 28, white on black). Training
 * takes `count` digits, going round the 8,500 again when it asks for more, each moved a
 * little at random; the held-out split takes its digits as they are.
 */
function mnistQuestions(split: "train" | "test", count: number, rng: Rng): VisionConversation[] {
  const digits = mnistDigits(split);
  const order = shuffle(digits.length, rng);
  const shift = () => (split === "train" ? rng.int(2 * MNIST_SHIFT + 1) - MNIST_SHIFT : 0);
  return Array.from({ length: split === "train" ? count : Math.min(count, digits.length) }, (_, k) => {
    const d = digits[order[k % digits.length] as number] as (typeof digits)[number];
    const question = MNIST_QUESTIONS[rng.int(MNIST_QUESTIONS.length)] as string;
    const png = grayPng(shiftDigit(d.pixels, shift(), shift()), MNIST_SIZE, MNIST_SIZE);
    return conversation("mnist", question, png, String(d.label));
  });
}

export interface VisionSynthOptions {
  /** synthetic picture questions in the training split (spread over the tasks) */
  scenes: number;
  /** MNIST training conversations (the package's 8,500 training digits, again and again past that, moved a little) */
  mnist: number;
  /** held-out conversations per synthetic task, and held-out MNIST digits */
  heldoutPerTask: number;
  heldoutMnist: number;
}

export function synthesizeVision(
  o: VisionSynthOptions,
  seed: number,
): { train: VisionConversation[]; heldout: VisionConversation[] } {
  const rng = new Rng(seed);
  const tasks = VISION_TASKS.filter((t): t is Exclude<VisionTask, "mnist"> => t !== "mnist");
  const train = Array.from({ length: o.scenes }, (_, i) => sceneQuestion(tasks[i % tasks.length] as never, rng, false));
  train.push(...mnistQuestions("train", o.mnist, rng));
  const heldout = tasks.flatMap((t) => Array.from({ length: o.heldoutPerTask }, () => sceneQuestion(t, rng, true)));
  heldout.push(...mnistQuestions("test", o.heldoutMnist, rng));
  // Interleave the tasks in training so every batch mixes them.
  return { train: shuffle(train.length, rng).map((i) => train[i] as VisionConversation), heldout };
}

/** A conversation as an OpenAI chat JSONL record: text and image_url parts. */
export function visionRecord(c: VisionConversation): Record<string, unknown> {
  const messages = c.messages.map((m) => {
    if (!m.images?.length) return { role: m.role, content: m.content };
    const images = [...m.images];
    const content = m.content
      .split(IMAGE_PLACEHOLDER)
      .flatMap((text, i) => [
        ...(i > 0 ? [{ type: "image_url", image_url: { url: images[i - 1] as string } }] : []),
        ...(text ? [{ type: "text", text }] : []),
      ]);
    return { role: m.role, content };
  });
  return { messages, meta: c.meta };
}
