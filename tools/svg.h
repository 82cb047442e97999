// Plain SVG figures for the evaluation report: no plotting software needed to make or view
// them (a browser shows them, Markdown embeds them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace amskv {
namespace svg {

struct Series {
  std::string name, color;
  bool dashed = false;
  std::string dash;          // an SVG stroke-dasharray ("2 3"); overrides dashed
  std::vector<double> x, y;  // y NaN = no point
};

// Lines with markers and a legend on the right.
std::string line_chart(const std::string& title, const std::string& x_label,
                       const std::string& y_label, const std::vector<Series>& series);

// One compression event of one KV head, as the AMS paper draws it: the attention mass per
// held token (bars), the regions (alternating shading, with their quota when known) and
// which tokens were kept (a tick under the axis).
struct EventPanel {
  std::string title;
  std::vector<int32_t> positions;  // absolute position of each held token
  std::vector<float> mass;         // its attention mass
  std::vector<uint8_t> kept;       // 1 if kept
  std::vector<int32_t> seg_start;  // first slot of each region
  std::vector<int32_t> seg_quota;  // tokens each region was given (empty: not AMS)
};

std::string event_figure(const std::string& title, const std::vector<EventPanel>& panels);

// A colour per index, distinguishable on white.
const char* palette(int i);

}  // namespace svg
}  // namespace amskv
