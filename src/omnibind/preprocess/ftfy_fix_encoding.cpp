#define PCRE2_CODE_UNIT_WIDTH 8
#include "omnibind/preprocess/ftfy_fix_encoding.h"

#include <pcre2.h>

#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "omnibind/preprocess/clip_text_clean.h"

namespace omnibind::preprocess {
namespace {

// Character classes of ftfy 6.2's badness heuristic and UTF-8 detector (generated from ftfy's tables).
constexpr const char* k_common = "\\x{A0}\\x{AD}\\x{B7}\\x{B4}\\x{2013}\\x{2014}\\x{2015}\\x{2026}\\x{2019}";
constexpr const char* k_c1 = "\\x{80}-\\x{9F}";
constexpr const char* k_bad = "\\x{A6}\\x{A4}\\x{A8}\\x{AC}\\x{AF}\\x{B6}\\x{A7}\\x{B8}\\x{192}\\x{2C6}\\x{2C7}\\x{2D8}\\x{2DB}\\x{2DC}\\x{2020}\\x{2021}\\x{2030}\\x{2310}\\x{25CA}\\x{FFFD}\\x{AA}\\x{BA}";
constexpr const char* k_currency = "\\x{A2}\\x{A3}\\x{A5}\\x{20A7}\\x{20AC}";
constexpr const char* k_start_punctuation = "\\x{A1}\\x{AB}\\x{BF}\\x{A9}\\x{384}\\x{385}\\x{2018}\\x{201A}\\x{201C}\\x{201E}\\x{2022}\\x{2039}\\x{F8FF}";
constexpr const char* k_end_punctuation = "\\x{AE}\\x{BB}\\x{2DD}\\x{201D}\\x{203A}\\x{2122}";
constexpr const char* k_numeric = "\\x{B2}\\x{B3}\\x{B9}\\x{B1}\\x{BC}\\x{BD}\\x{BE}\\x{D7}\\x{B5}\\x{F7}\\x{2044}\\x{2202}\\x{2206}\\x{220F}\\x{2211}\\x{221A}\\x{221E}\\x{2229}\\x{222B}\\x{2248}\\x{2260}\\x{2261}\\x{2264}\\x{2265}\\x{2116}";
constexpr const char* k_kaomoji = "\\x{D2}-\\x{D6}\\x{D9}-\\x{DC}\\x{F2}-\\x{F6}\\x{F8}-\\x{FC}\\x{150}\\x{B0}";
constexpr const char* k_upper_accented = "\\x{C0}-\\x{D1}\\x{D8}\\x{DC}\\x{DD}\\x{102}\\x{104}\\x{106}\\x{10C}\\x{10E}\\x{110}\\x{118}\\x{11A}\\x{11E}\\x{130}\\x{139}\\x{13D}\\x{141}\\x{143}\\x{147}\\x{152}\\x{158}\\x{15A}\\x{15E}\\x{160}\\x{162}\\x{164}\\x{16E}\\x{170}\\x{178}\\x{179}\\x{17B}\\x{17D}\\x{490}";
constexpr const char* k_lower_accented = "\\x{DF}\\x{E0}-\\x{F1}\\x{103}\\x{105}\\x{107}\\x{10D}\\x{10F}\\x{111}\\x{119}\\x{11B}\\x{11F}\\x{13A}\\x{13E}\\x{142}\\x{153}\\x{155}\\x{15B}\\x{15F}\\x{161}\\x{165}\\x{FC}\\x{17A}\\x{17C}\\x{17E}\\x{491}\\x{FB01}\\x{FB02}";
constexpr const char* k_upper_common = "\\x{DE}\\x{391}-\\x{3A9}\\x{386}\\x{388}\\x{389}\\x{38A}\\x{38C}\\x{38E}\\x{38F}\\x{3AA}\\x{3AB}\\x{401}-\\x{42F}";
constexpr const char* k_lower_common = "\\x{3B1}-\\x{3C9}\\x{3AC}\\x{3AD}\\x{3AE}\\x{3AF}\\x{3B0}\\x{430}-\\x{45F}";
constexpr const char* k_box = "\\x{2502}\\x{250C}\\x{2510}\\x{2518}\\x{251C}\\x{2524}\\x{252C}\\x{253C}\\x{2550}-\\x{256C}\\x{2580}\\x{2584}\\x{2588}\\x{258C}\\x{2590}\\x{2591}\\x{2592}\\x{2593}";
constexpr const char* k_utf8_first_of_2 = "\\x{C2}\\x{C3}\\x{C4}\\x{C5}\\x{C6}\\x{C7}\\x{C8}\\x{C9}\\x{CA}\\x{CB}\\x{CC}\\x{CD}\\x{CE}\\x{CF}\\x{D0}\\x{D1}\\x{D2}\\x{D3}\\x{D4}\\x{D5}\\x{D6}\\x{D7}\\x{D8}\\x{D9}\\x{DA}\\x{DB}\\x{DC}\\x{DD}\\x{DE}\\x{DF}\\x{102}\\x{106}\\x{10C}\\x{10E}\\x{110}\\x{118}\\x{11A}\\x{11E}\\x{130}\\x{139}\\x{143}\\x{147}\\x{150}\\x{158}\\x{15E}\\x{162}\\x{16E}\\x{170}\\x{392}\\x{393}\\x{394}\\x{395}\\x{396}\\x{397}\\x{398}\\x{399}\\x{39A}\\x{39B}\\x{39C}\\x{39D}\\x{39E}\\x{39F}\\x{3A0}\\x{3A1}\\x{3A3}\\x{3A4}\\x{3A5}\\x{3A6}\\x{3A7}\\x{3A8}\\x{3A9}\\x{3AA}\\x{3AB}\\x{3AC}\\x{3AD}\\x{3AE}\\x{3AF}\\x{412}\\x{413}\\x{414}\\x{415}\\x{416}\\x{417}\\x{418}\\x{419}\\x{41A}\\x{41B}\\x{41C}\\x{41D}\\x{41E}\\x{41F}\\x{420}\\x{421}\\x{422}\\x{423}\\x{424}\\x{425}\\x{426}\\x{427}\\x{428}\\x{429}\\x{42A}\\x{42B}\\x{42C}\\x{42D}\\x{42E}\\x{42F}";
constexpr const char* k_utf8_first_of_3 = "\\x{E0}\\x{E1}\\x{E2}\\x{E3}\\x{E4}\\x{E5}\\x{E6}\\x{E7}\\x{E8}\\x{E9}\\x{EA}\\x{EB}\\x{EC}\\x{ED}\\x{EE}\\x{EF}\\x{103}\\x{107}\\x{10D}\\x{10F}\\x{119}\\x{11B}\\x{13A}\\x{155}\\x{3B0}\\x{3B1}\\x{3B2}\\x{3B3}\\x{3B4}\\x{3B5}\\x{3B6}\\x{3B7}\\x{3B8}\\x{3B9}\\x{3BA}\\x{3BB}\\x{3BC}\\x{3BD}\\x{3BE}\\x{3BF}\\x{430}\\x{431}\\x{432}\\x{433}\\x{434}\\x{435}\\x{436}\\x{437}\\x{438}\\x{439}\\x{43A}\\x{43B}\\x{43C}\\x{43D}\\x{43E}\\x{43F}";
constexpr const char* k_utf8_first_of_4 = "\\x{F0}\\x{F3}\\x{111}\\x{11F}\\x{3C0}\\x{3C3}\\x{440}\\x{443}";
constexpr const char* k_utf8_continuation = "\\x{80}-\\x{BF}\\x{104}\\x{105}\\x{13D}\\x{13E}\\x{141}\\x{142}\\x{152}\\x{153}\\x{15A}\\x{15B}\\x{15E}\\x{15F}\\x{160}\\x{161}\\x{164}\\x{165}\\x{178}\\x{179}\\x{17A}\\x{17B}\\x{17C}\\x{17D}\\x{17E}\\x{192}\\x{2C6}\\x{2C7}\\x{2D8}\\x{2DB}\\x{2DC}\\x{2DD}\\x{384}\\x{385}\\x{386}\\x{388}\\x{389}\\x{38A}\\x{38C}\\x{38E}\\x{38F}\\x{401}\\x{402}\\x{403}\\x{404}\\x{405}\\x{406}\\x{407}\\x{408}\\x{409}\\x{40A}\\x{40B}\\x{40C}\\x{40E}\\x{40F}\\x{451}\\x{452}\\x{453}\\x{454}\\x{455}\\x{456}\\x{457}\\x{458}\\x{459}\\x{45A}\\x{45B}\\x{45C}\\x{45E}\\x{45F}\\x{490}\\x{491}\\x{2013}\\x{2014}\\x{2015}\\x{2018}\\x{2019}\\x{201A}\\x{201C}\\x{201D}\\x{201E}\\x{2020}\\x{2021}\\x{2022}\\x{2026}\\x{2030}\\x{2039}\\x{203A}\\x{20AC}\\x{2116}\\x{2122}\\x{20}";
constexpr const char* k_utf8_continuation_strict = "\\x{80}-\\x{BF}\\x{104}\\x{105}\\x{13D}\\x{13E}\\x{141}\\x{142}\\x{152}\\x{153}\\x{15A}\\x{15B}\\x{15E}\\x{15F}\\x{160}\\x{161}\\x{164}\\x{165}\\x{178}\\x{179}\\x{17A}\\x{17B}\\x{17C}\\x{17D}\\x{17E}\\x{192}\\x{2C6}\\x{2C7}\\x{2D8}\\x{2DB}\\x{2DC}\\x{2DD}\\x{384}\\x{385}\\x{386}\\x{388}\\x{389}\\x{38A}\\x{38C}\\x{38E}\\x{38F}\\x{401}\\x{402}\\x{403}\\x{404}\\x{405}\\x{406}\\x{407}\\x{408}\\x{409}\\x{40A}\\x{40B}\\x{40C}\\x{40E}\\x{40F}\\x{451}\\x{452}\\x{453}\\x{454}\\x{455}\\x{456}\\x{457}\\x{458}\\x{459}\\x{45A}\\x{45B}\\x{45C}\\x{45E}\\x{45F}\\x{490}\\x{491}\\x{2020}\\x{2021}\\x{2022}\\x{2030}\\x{2039}\\x{203A}\\x{20AC}\\x{2116}\\x{2122}";
// ---------------------------------------------------------------- single-byte code pages

struct Charmap {
  const char* name;
  bool sloppy;         // ftfy's "sloppy-" codecs: unassigned bytes pass through as Latin-1, 0x1A <-> U+FFFD
  char32_t high[128];  // bytes 0x80..0xFF
};

const Charmap kCharmaps[] = {
// Generated from CPython's codec tables (bytes 0x80..0xFF; 'sloppy' = unassigned bytes as Latin-1).
    {"latin-1", false, {0x0080, 0x0081, 0x0082, 0x0083, 0x0084, 0x0085, 0x0086, 0x0087, 0x0088, 0x0089, 0x008A, 0x008B, 0x008C, 0x008D, 0x008E, 0x008F, 0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0095, 0x0096, 0x0097, 0x0098, 0x0099, 0x009A, 0x009B, 0x009C, 0x009D, 0x009E, 0x009F, 0x00A0, 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x00AF, 0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x00B4, 0x00B5, 0x00B6, 0x00B7, 0x00B8, 0x00B9, 0x00BA, 0x00BB, 0x00BC, 0x00BD, 0x00BE, 0x00BF, 0x00C0, 0x00C1, 0x00C2, 0x00C3, 0x00C4, 0x00C5, 0x00C6, 0x00C7, 0x00C8, 0x00C9, 0x00CA, 0x00CB, 0x00CC, 0x00CD, 0x00CE, 0x00CF, 0x00D0, 0x00D1, 0x00D2, 0x00D3, 0x00D4, 0x00D5, 0x00D6, 0x00D7, 0x00D8, 0x00D9, 0x00DA, 0x00DB, 0x00DC, 0x00DD, 0x00DE, 0x00DF, 0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7, 0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF, 0x00F0, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x00F7, 0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x00FD, 0x00FE, 0x00FF}},
    {"sloppy-windows-1252", true, {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178, 0x00A0, 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x00AF, 0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x00B4, 0x00B5, 0x00B6, 0x00B7, 0x00B8, 0x00B9, 0x00BA, 0x00BB, 0x00BC, 0x00BD, 0x00BE, 0x00BF, 0x00C0, 0x00C1, 0x00C2, 0x00C3, 0x00C4, 0x00C5, 0x00C6, 0x00C7, 0x00C8, 0x00C9, 0x00CA, 0x00CB, 0x00CC, 0x00CD, 0x00CE, 0x00CF, 0x00D0, 0x00D1, 0x00D2, 0x00D3, 0x00D4, 0x00D5, 0x00D6, 0x00D7, 0x00D8, 0x00D9, 0x00DA, 0x00DB, 0x00DC, 0x00DD, 0x00DE, 0x00DF, 0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7, 0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF, 0x00F0, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x00F7, 0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x00FD, 0x00FE, 0x00FF}},
    {"sloppy-windows-1251", true, {0x0402, 0x0403, 0x201A, 0x0453, 0x201E, 0x2026, 0x2020, 0x2021, 0x20AC, 0x2030, 0x0409, 0x2039, 0x040A, 0x040C, 0x040B, 0x040F, 0x0452, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x0098, 0x2122, 0x0459, 0x203A, 0x045A, 0x045C, 0x045B, 0x045F, 0x00A0, 0x040E, 0x045E, 0x0408, 0x00A4, 0x0490, 0x00A6, 0x00A7, 0x0401, 0x00A9, 0x0404, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x0407, 0x00B0, 0x00B1, 0x0406, 0x0456, 0x0491, 0x00B5, 0x00B6, 0x00B7, 0x0451, 0x2116, 0x0454, 0x00BB, 0x0458, 0x0405, 0x0455, 0x0457, 0x0410, 0x0411, 0x0412, 0x0413, 0x0414, 0x0415, 0x0416, 0x0417, 0x0418, 0x0419, 0x041A, 0x041B, 0x041C, 0x041D, 0x041E, 0x041F, 0x0420, 0x0421, 0x0422, 0x0423, 0x0424, 0x0425, 0x0426, 0x0427, 0x0428, 0x0429, 0x042A, 0x042B, 0x042C, 0x042D, 0x042E, 0x042F, 0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437, 0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E, 0x043F, 0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447, 0x0448, 0x0449, 0x044A, 0x044B, 0x044C, 0x044D, 0x044E, 0x044F}},
    {"sloppy-windows-1250", true, {0x20AC, 0x0081, 0x201A, 0x0083, 0x201E, 0x2026, 0x2020, 0x2021, 0x0088, 0x2030, 0x0160, 0x2039, 0x015A, 0x0164, 0x017D, 0x0179, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x0098, 0x2122, 0x0161, 0x203A, 0x015B, 0x0165, 0x017E, 0x017A, 0x00A0, 0x02C7, 0x02D8, 0x0141, 0x00A4, 0x0104, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x015E, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x017B, 0x00B0, 0x00B1, 0x02DB, 0x0142, 0x00B4, 0x00B5, 0x00B6, 0x00B7, 0x00B8, 0x0105, 0x015F, 0x00BB, 0x013D, 0x02DD, 0x013E, 0x017C, 0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7, 0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E, 0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7, 0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF, 0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7, 0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F, 0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7, 0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9}},
    {"sloppy-windows-1253", true, {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x0088, 0x2030, 0x008A, 0x2039, 0x008C, 0x008D, 0x008E, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x0098, 0x2122, 0x009A, 0x203A, 0x009C, 0x009D, 0x009E, 0x009F, 0x00A0, 0x0385, 0x0386, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x2015, 0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x0384, 0x00B5, 0x00B6, 0x00B7, 0x0388, 0x0389, 0x038A, 0x00BB, 0x038C, 0x00BD, 0x038E, 0x038F, 0x0390, 0x0391, 0x0392, 0x0393, 0x0394, 0x0395, 0x0396, 0x0397, 0x0398, 0x0399, 0x039A, 0x039B, 0x039C, 0x039D, 0x039E, 0x039F, 0x03A0, 0x03A1, 0x00D2, 0x03A3, 0x03A4, 0x03A5, 0x03A6, 0x03A7, 0x03A8, 0x03A9, 0x03AA, 0x03AB, 0x03AC, 0x03AD, 0x03AE, 0x03AF, 0x03B0, 0x03B1, 0x03B2, 0x03B3, 0x03B4, 0x03B5, 0x03B6, 0x03B7, 0x03B8, 0x03B9, 0x03BA, 0x03BB, 0x03BC, 0x03BD, 0x03BE, 0x03BF, 0x03C0, 0x03C1, 0x03C2, 0x03C3, 0x03C4, 0x03C5, 0x03C6, 0x03C7, 0x03C8, 0x03C9, 0x03CA, 0x03CB, 0x03CC, 0x03CD, 0x03CE, 0x00FF}},
    {"sloppy-windows-1254", true, {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x008E, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x009E, 0x0178, 0x00A0, 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x00AF, 0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x00B4, 0x00B5, 0x00B6, 0x00B7, 0x00B8, 0x00B9, 0x00BA, 0x00BB, 0x00BC, 0x00BD, 0x00BE, 0x00BF, 0x00C0, 0x00C1, 0x00C2, 0x00C3, 0x00C4, 0x00C5, 0x00C6, 0x00C7, 0x00C8, 0x00C9, 0x00CA, 0x00CB, 0x00CC, 0x00CD, 0x00CE, 0x00CF, 0x011E, 0x00D1, 0x00D2, 0x00D3, 0x00D4, 0x00D5, 0x00D6, 0x00D7, 0x00D8, 0x00D9, 0x00DA, 0x00DB, 0x00DC, 0x0130, 0x015E, 0x00DF, 0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7, 0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF, 0x011F, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x00F7, 0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x0131, 0x015F, 0x00FF}},
    {"iso-8859-2", false, {0x0080, 0x0081, 0x0082, 0x0083, 0x0084, 0x0085, 0x0086, 0x0087, 0x0088, 0x0089, 0x008A, 0x008B, 0x008C, 0x008D, 0x008E, 0x008F, 0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0095, 0x0096, 0x0097, 0x0098, 0x0099, 0x009A, 0x009B, 0x009C, 0x009D, 0x009E, 0x009F, 0x00A0, 0x0104, 0x02D8, 0x0141, 0x00A4, 0x013D, 0x015A, 0x00A7, 0x00A8, 0x0160, 0x015E, 0x0164, 0x0179, 0x00AD, 0x017D, 0x017B, 0x00B0, 0x0105, 0x02DB, 0x0142, 0x00B4, 0x013E, 0x015B, 0x02C7, 0x00B8, 0x0161, 0x015F, 0x0165, 0x017A, 0x02DD, 0x017E, 0x017C, 0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7, 0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E, 0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7, 0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF, 0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7, 0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F, 0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7, 0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9}},
    {"macroman", false, {0x00C4, 0x00C5, 0x00C7, 0x00C9, 0x00D1, 0x00D6, 0x00DC, 0x00E1, 0x00E0, 0x00E2, 0x00E4, 0x00E3, 0x00E5, 0x00E7, 0x00E9, 0x00E8, 0x00EA, 0x00EB, 0x00ED, 0x00EC, 0x00EE, 0x00EF, 0x00F1, 0x00F3, 0x00F2, 0x00F4, 0x00F6, 0x00F5, 0x00FA, 0x00F9, 0x00FB, 0x00FC, 0x2020, 0x00B0, 0x00A2, 0x00A3, 0x00A7, 0x2022, 0x00B6, 0x00DF, 0x00AE, 0x00A9, 0x2122, 0x00B4, 0x00A8, 0x2260, 0x00C6, 0x00D8, 0x221E, 0x00B1, 0x2264, 0x2265, 0x00A5, 0x00B5, 0x2202, 0x2211, 0x220F, 0x03C0, 0x222B, 0x00AA, 0x00BA, 0x03A9, 0x00E6, 0x00F8, 0x00BF, 0x00A1, 0x00AC, 0x221A, 0x0192, 0x2248, 0x2206, 0x00AB, 0x00BB, 0x2026, 0x00A0, 0x00C0, 0x00C3, 0x00D5, 0x0152, 0x0153, 0x2013, 0x2014, 0x201C, 0x201D, 0x2018, 0x2019, 0x00F7, 0x25CA, 0x00FF, 0x0178, 0x2044, 0x20AC, 0x2039, 0x203A, 0xFB01, 0xFB02, 0x2021, 0x00B7, 0x201A, 0x201E, 0x2030, 0x00C2, 0x00CA, 0x00C1, 0x00CB, 0x00C8, 0x00CD, 0x00CE, 0x00CF, 0x00CC, 0x00D3, 0x00D4, 0xF8FF, 0x00D2, 0x00DA, 0x00DB, 0x00D9, 0x0131, 0x02C6, 0x02DC, 0x00AF, 0x02D8, 0x02D9, 0x02DA, 0x00B8, 0x02DD, 0x02DB, 0x02C7}},
    {"cp437", false, {0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5, 0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9, 0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192, 0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB, 0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510, 0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B, 0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580, 0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, 0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229, 0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248, 0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0}},
};

struct CharmapIndex {
  std::unordered_map<char32_t, uint8_t> encode;  // char -> byte (bytes >= 0x80, plus 0x1A for sloppy)
};

const CharmapIndex& index_of(size_t i) {
  static const std::vector<CharmapIndex> all = [] {
    std::vector<CharmapIndex> v(std::size(kCharmaps));
    for (size_t e = 0; e < v.size(); ++e) {
      // codecs.charmap_build: the first byte holding a character is the one it encodes to.
      for (int b = 0xFF; b >= 0x80; --b) v[e].encode[kCharmaps[e].high[b - 0x80]] = static_cast<uint8_t>(b);
      if (kCharmaps[e].sloppy) v[e].encode[0xFFFD] = 0x1A;
    }
    return v;
  }();
  return all[i];
}

// chardata.possible_encoding + str.encode: the bytes, or nothing when a character has no byte.
// ASCII except 0x1A is itself everywhere; 0x1A is U+FFFD's byte in the sloppy codecs.
std::optional<std::string> encode_single_byte(const std::u32string& text, size_t e) {
  const auto& idx = index_of(e);
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80 && !(c == 0x1A && kCharmaps[e].sloppy)) {
      out += static_cast<char>(c);
      continue;
    }
    auto it = idx.encode.find(c);
    if (it == idx.encode.end()) return std::nullopt;
    out += static_cast<char>(it->second);
  }
  return out;
}

// ---------------------------------------------------------------- regexes

struct Regex {
  pcre2_code* code = nullptr;
  Regex(const std::string& pattern, bool utf) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                         utf ? (PCRE2_UTF | PCRE2_UCP) : 0, &err, &off, nullptr);
    if (!code) throw std::logic_error("ftfy: a regex does not compile at offset " + std::to_string(off));
  }
  ~Regex() { pcre2_code_free(code); }
  // First match at or after `start`: [begin, end) byte offsets, or nothing.
  std::optional<std::pair<size_t, size_t>> find(const std::string& s, size_t start) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), start, 0, md, nullptr);
    std::optional<std::pair<size_t, size_t>> r;
    if (rc >= 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      r = std::make_pair(static_cast<size_t>(ov[0]), static_cast<size_t>(ov[1]));
    }
    pcre2_match_data_free(md);
    return r;
  }
  // re.sub with a function of the matched text (non-overlapping, left to right).
  template <class F>
  std::string sub(const std::string& s, F&& f) const {
    std::string out;
    size_t pos = 0, last = 0;
    while (pos <= s.size()) {
      auto m = find(s, pos);
      if (!m) break;
      out.append(s, last, m->first - last);
      out += f(s.substr(m->first, m->second - m->first));
      last = m->second;
      pos = m->second > m->first ? m->second : m->second + 1;
    }
    out.append(s, last, std::string::npos);
    return out;
  }
};

std::string cat(std::initializer_list<const char*> parts) {
  std::string s;
  for (const char* p : parts) s += p;
  return s;
}

// ftfy.badness.BADNESS_RE: juxtapositions of characters that occur in mojibake far more often
// than in intended text (the categories above).
const Regex& badness_re() {
  const std::string bad = k_bad, c1 = k_c1, common = k_common, cur = k_currency, num = k_numeric, sp = k_start_punctuation,
                    ep = k_end_punctuation, la = k_lower_accented, ua = k_upper_accented, lc = k_lower_common,
                    uc = k_upper_common, box = k_box, kao = k_kaomoji;
  static const Regex re(
      "[" + c1 + "]"
      "|[" + bad + la + ua + box + sp + ep + cur + num + "][" + bad + "]"
      "|[a-zA-Z][" + lc + uc + "][" + bad + "]"
      "|[" + bad + "][" + la + ua + box + sp + ep + cur + num + "]"
      "|[" + la + lc + box + ep + cur + num + "][" + ua + "]"
      "|[" + box + ep + cur + num + "][" + la + "]"
      "|[" + la + box + ep + "][" + cur + "]"
      "|\\s[" + ua + "][" + cur + "]"
      "|[" + ua + box + "][" + num + "]"
      "|[" + la + ua + box + cur + ep + "][" + sp + "][" + num + "]"
      "|[" + la + ua + cur + num + box + "][" + ep + "][" + sp + "]"
      "|[" + cur + num + box + "][" + sp + "]"
      "|[a-z][" + ua + "][" + sp + cur + "]"
      "|[" + box + "][" + kao + "]"
      "|[" + la + ua + cur + num + sp + ep + "][" + box + "]"
      "|[" + box + "][" + ep + "]"
      "|[" + la + ua + "][" + ep + "]\\w"
      // the ligature oe when not followed by an unaccented Latin letter
      "|[\\x{152}\\x{153}][^A-Za-z]"
      // common Windows-1252 two-character mojibake
      "|[\\x{C2}\\x{C3}\\x{CE}\\x{D0}][\\x{20AC}\\x{160}\\x{161}\\x{A2}\\x{A3}\\x{178}\\x{17E}\\x{A0}\\x{AD}\\x{AE}\\x{A9}"
      "\\x{B0}\\x{B7}\\x{BB}" + sp + ep + "\\x{2013}\\x{2014}\\x{B4}]"
      "|\\x{D7}[\\x{B2}\\x{B3}]"
      // Windows-1252 mojibake of Arabic: four characters
      "|[\\x{D8}\\x{D9}][" + common + cur + bad + num + sp + "\\x{178}\\x{160}\\x{AE}\\x{B0}\\x{B5}\\x{BB}]"
      "[\\x{D8}\\x{D9}][" + common + cur + bad + num + sp + "\\x{178}\\x{160}\\x{AE}\\x{B0}\\x{B5}\\x{BB}]"
      // Windows-1252 starts of South Asian three-byte sequences
      "|\\x{E0}[\\x{B2}\\x{B5}\\x{B9}\\x{BC}\\x{BD}\\x{BE}]"
      // MacRoman
      "|\\x{221A}[\\x{B1}\\x{2202}\\x{2020}\\x{2260}\\x{AE}\\x{2122}\\x{B4}\\x{2264}\\x{2265}\\x{A5}\\x{B5}\\x{F8}]"
      "|\\x{2248}[\\x{B0}\\x{A2}]"
      "|\\x{201A}\\x{C4}[\\x{EC}\\x{EE}\\x{EF}\\x{F2}\\x{F4}\\x{FA}\\x{F9}\\x{FB}\\x{2020}\\x{B0}\\x{A2}\\x{3C0}]"
      "|\\x{201A}[\\x{E2}\\x{F3}][\\x{E0}\\x{E4}\\x{B0}\\x{EA}]"
      // Windows-1251
      "|\\x{432}\\x{402}"
      "|[\\x{412}\\x{413}\\x{420}\\x{421}][" + c1 + bad + sp + ep + cur + "\\x{B0}\\x{B5}][\\x{412}\\x{413}\\x{420}\\x{421}]"
      "|\\x{413}\\x{45E}\\x{412}\\x{402}\\x{412}.[A-Za-z ]"
      // Windows-1252 encodings of a-grave, a-acute and no-break space
      "|\\x{C3}[\\x{A0}\\x{A1}]"
      "|[a-z]\\s?[\\x{C3}\\x{C2}][ ]"
      "|^[\\x{C3}\\x{C2}][ ]"
      "|[a-z.,?!" + ep + "]\\x{C2}[ " + sp + ep + "]"
      // Windows-1253
      "|\\x{3B2}\\x{20AC}[\\x{2122}\\x{A0}\\x{386}\\x{AD}\\x{AE}\\x{B0}]"
      "|[\\x{392}\\x{393}\\x{39E}\\x{39F}][" + c1 + bad + sp + ep + cur + "\\x{B0}][\\x{392}\\x{393}\\x{39E}\\x{39F}]",
      true);
  return re;
}

// chardata.UTF8_DETECTOR_RE: runs of characters that look like UTF-8 read as a Latin-1-like code
// page, not preceded by a strict continuation character.
const Regex& utf8_detector_re() {
  static const Regex re(cat({"(?<![", k_utf8_continuation_strict, "])(?:[", k_utf8_first_of_2, "][", k_utf8_continuation,
                             "]|[", k_utf8_first_of_3, "][", k_utf8_continuation, "]{2}|[", k_utf8_first_of_4, "][",
                             k_utf8_continuation, "]{3})+"}),
                        true);
  return re;
}

// Byte-level patterns (no UTF mode).
const Regex& altered_utf8_re() {  // UTF-8 sequences whose 0xA0 became a space
  static const Regex re(
      "[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9][ ]"
      "|[\\xe2\\xe3][ ][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]"
      "|[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf][ ]"
      "|[\\xf0][ ][\\x80-\\xbf][\\x80-\\xbf]"
      "|[\\xf0][\\x80-\\xbf][ ][\\x80-\\xbf]"
      "|[\\xf0][\\x80-\\xbf][\\x80-\\xbf][ ]",
      false);
  return re;
}
const Regex& a_grave_word_re() {  // "à" as a word, whose 0xA0 became a space
  static const Regex re("\\xc3 (?! |quele|quela|quilo|s )", false);
  return re;
}
const Regex& lossy_utf8_re() {  // UTF-8 sequences with bytes lost to U+FFFD (0x1A) or '?'
  static const Regex re(
      "[\\xc2-\\xdf][\\x1a]"
      "|[\\xc2-\\xc3][?]"
      "|\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]"
      "|\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]"
      "|[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]"
      "|[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]"
      "|[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]"
      "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]"
      "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]"
      "|\\x1a",
      false);
  return re;
}

// ---------------------------------------------------------------- UTF-8 decoding

// Python's strict UTF-8 decoder; `variants` adds ftfy's utf-8-variants: CESU-8 surrogate pairs
// (ED A0-AF xx ED B0-BF xx) and Java's C0 80 for U+0000.
std::optional<std::u32string> decode_utf8(const std::string& b, bool variants) {
  std::u32string out;
  const auto* s = reinterpret_cast<const unsigned char*>(b.data());
  const size_t n = b.size();
  auto cont = [&](size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out += c;
      ++i;
    } else if (variants && c == 0xC0 && i + 1 < n && s[i + 1] == 0x80) {
      out += U'\0';
      i += 2;
    } else if (variants && c == 0xED && i + 5 < n && s[i + 1] >= 0xA0 && s[i + 1] <= 0xAF && cont(i + 2) &&
               s[i + 3] == 0xED && s[i + 4] >= 0xB0 && s[i + 4] <= 0xBF && cont(i + 5)) {
      const char32_t hi = 0xD000 | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      const char32_t lo = 0xD000 | ((s[i + 4] & 0x3F) << 6) | (s[i + 5] & 0x3F);
      out += 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
      i += 6;
    } else if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) {
      out += ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2)) {
      const char32_t cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;  // overlong, surrogate
      out += cp;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      const char32_t cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (cp < 0x10000 || cp > 0x10FFFF) return std::nullopt;
      out += cp;
      i += 4;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

bool all_ascii(const std::u32string& t) {
  for (char32_t c : t)
    if (c > 0x7F) return false;
  return true;
}

std::u32string decode_inconsistent_utf8(const std::u32string& text);

// ftfy._fix_encoding_one_step_and_explain.
std::u32string fix_one_step(const std::u32string& text) {
  if (text.empty() || all_ascii(text) || !ftfy_is_bad(text)) return text;
  bool latin1_possible = false;
  for (size_t e = 0; e < std::size(kCharmaps); ++e) {
    auto bytes = encode_single_byte(text, e);
    if (!bytes) continue;
    const std::string name = kCharmaps[e].name;
    if (name == "latin-1") latin1_possible = true;
    std::string b = *bytes;
    if (name != "macroman" && altered_utf8_re().find(b, 0)) {  // restore_byte_a0
      b = a_grave_word_re().sub(b, [](const std::string&) { return std::string("\xc3\xa0 "); });
      b = altered_utf8_re().sub(b, [](std::string m) {
        for (char& ch : m)
          if (ch == ' ') ch = '\xa0';
        return m;
      });
    }
    if (kCharmaps[e].sloppy)  // replace_lossy_sequences
      b = lossy_utf8_re().sub(b, [](const std::string&) { return std::string("\xef\xbf\xbd"); });
    const bool variants = b.find('\xed') != std::string::npos || b.find('\xc0') != std::string::npos;
    if (auto fixed = decode_utf8(b, variants)) return *fixed;
  }
  if (utf8_detector_re().find(encode_utf8(text), 0)) {
    std::u32string fixed = decode_inconsistent_utf8(text);
    if (fixed != text) return fixed;
  }
  if (latin1_possible) {
    // Latin-1 text with C1 controls meant as Windows-1252 (strict codec: 81 8D 8F 90 9D undefined).
    std::u32string fixed;
    bool ok = true;
    for (char32_t c : text) {
      if (c >= 0x80 && c <= 0x9F) {
        const char32_t w = kCharmaps[1].high[c - 0x80];
        if (w == c) {
          ok = false;
          break;
        }
        fixed += w;
      } else {
        fixed += c;
      }
    }
    if (ok && fixed != text) return fixed;
  }
  bool has_c1 = false;
  for (char32_t c : text) has_c1 = has_c1 || (c >= 0x80 && c <= 0x9F);
  if (has_c1) {  // fix_c1_controls: each C1 character as its sloppy-windows-1252 byte
    std::u32string fixed = text;
    for (char32_t& c : fixed)
      if (c >= 0x80 && c <= 0x9F) c = kCharmaps[1].high[c - 0x80];
    return fixed;
  }
  return text;
}

// fixes.decode_inconsistent_utf8: fix each UTF-8-looking run that is shorter than the text and bad.
std::u32string decode_inconsistent_utf8(const std::u32string& text) {
  const std::string s = encode_utf8(text);
  const std::string out = utf8_detector_re().sub(s, [&](const std::string& m) {
    const std::u32string sub = decode_utf8_strict(m);
    if (sub.size() < text.size() && ftfy_is_bad(sub)) return encode_utf8(ftfy_fix_encoding(sub));
    return m;
  });
  return decode_utf8_strict(out);
}

}  // namespace

bool ftfy_is_bad(const std::u32string& text) { return badness_re().find(encode_utf8(text), 0).has_value(); }

std::u32string ftfy_fix_encoding(const std::u32string& text) {
  std::u32string t = text;
  for (int guard = 0; guard < 64; ++guard) {  // ftfy loops until nothing changes
    std::u32string next = fix_one_step(t);
    if (next == t) break;
    t = std::move(next);
  }
  return t;
}

}  // namespace omnibind::preprocess
