#include "tools/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace amskv {
namespace svg {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle",
                 int size = 12, const char* extra = "") {
  return fmt("<text x=\"%.1f\" y=\"%.1f\"", x, y) + " font-size=\"" + std::to_string(size) +
         "\" text-anchor=\"" + anchor + "\" font-family=\"sans-serif\"" + extra + ">" + esc(s) +
         "</text>\n";
}

// Round tick steps: 1, 2, 5 times a power of ten, about n ticks over [lo, hi].
std::vector<double> ticks(double lo, double hi, int n) {
  std::vector<double> t;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / n, p = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string dash_attr(const Series& s) {
  const std::string d = !s.dash.empty() ? s.dash : s.dashed ? "6 4" : "";
  return d.empty() ? "" : " stroke-dasharray=\"" + d + "\"";
}

const char* palette(int i) {
  static const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                        "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return kColors[((i % 10) + 10) % 10];
}

std::string line_chart(const std::string& title, const std::string& x_label,
                       const std::string& y_label, const std::vector<Series>& series) {
  const double L = 70, R = 560, T = 40, B = 360;  // plot box; the legend right of it
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.name.size());
  const double W = std::max(760.0, R + 56 + 6.5 * (double)longest),
               H = std::max(420.0, T + 28 + 17.0 * (double)series.size());
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isnan(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!(x1 >= x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  const double pad = (y1 - y0) * 0.05 + 1e-9;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (R - L); };
  auto py = [&](double y) { return B - (y - y0) / (y1 - y0) * (B - T); };
  std::string o =
      fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
          "viewBox=\"0 0 %.0f %.0f\">\n",
          W, H, W, H);
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += text(W / 2 - 100, 22, title, "middle", 15);
  for (double t : ticks(y0, y1, 6)) {
    o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py(t),
             R, py(t));
    o += text(L - 6, py(t) + 4, num(t), "end", 11);
  }
  for (double t : ticks(x0, x1, 6)) o += text(px(t), B + 16, num(t), "middle", 11);
  o +=
      fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
          "stroke=\"black\"/>\n",
          L, T, R - L, B - T);
  o += text((L + R) / 2, B + 36, x_label, "middle", 12);
  o += fmt("<text transform=\"translate(%.1f %.1f) rotate(-90)\"", 18, (T + B) / 2) +
       " font-size=\"12\" text-anchor=\"middle\" font-family=\"sans-serif\">" + esc(y_label) +
       "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isnan(s.y[i])) continue;
      pts += fmt("%.1f,%.1f ", px(s.x[i]), py(s.y[i]));
      o += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"", px(s.x[i]), py(s.y[i])) + " fill=\"" +
           s.color + "\"/>\n";
    }
    o += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.8\"" + dash_attr(s) +
         " points=\"" + pts + "\"/>\n";
    const double ly = T + 8 + 17.0 * k;
    o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"", R + 12, ly, R + 40, ly) +
         " stroke=\"" + s.color + "\" stroke-width=\"2\"" + dash_attr(s) + "/>\n";
    o += text(R + 46, ly + 4, s.name, "start", 11);
  }
  return o + "</svg>\n";
}

std::string event_figure(const std::string& title, const std::vector<EventPanel>& panels) {
  const double W = 960, L = 60, R = 940, PH = 190, T0 = 40;
  const double H = T0 + PH * panels.size() + 10;
  std::string o =
      fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
          "viewBox=\"0 0 %.0f %.0f\">\n",
          W, H, W, H);
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += text(W / 2, 22, title, "middle", 15);
  for (size_t p = 0; p < panels.size(); ++p) {
    const EventPanel& e = panels[p];
    const double top = T0 + PH * p + 18, base = top + 120;
    const int n = (int)e.mass.size();
    if (n == 0) continue;
    float mx = 0;
    for (float m : e.mass) mx = std::max(mx, m);
    if (mx <= 0) mx = 1;
    const double bw = (R - L) / n;
    int kept = 0;
    for (uint8_t k : e.kept) kept += k;
    o += text(L, top - 4,
              e.title + "  (" + std::to_string(n) + " tokens held, " + std::to_string(kept) +
                  " kept, " + std::to_string(e.seg_start.size()) + " regions)",
              "start", 12);
    for (size_t s = 0; s < e.seg_start.size(); ++s) {  // region shading and quota
      const int a = e.seg_start[s], b = s + 1 < e.seg_start.size() ? e.seg_start[s + 1] : n;
      int k = 0;
      for (int i = a; i < b; ++i) k += e.kept[i];
      const char* fill = k == 0 ? "#fbd5d5" : s % 2 ? "#eef3fa" : "#f8f8f8";
      o += fmt("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\"", L + a * bw, top,
               (b - a) * bw, base - top) +
           " fill=\"" + fill + "\"/>\n";
      if (s < e.seg_quota.size() && (b - a) * bw > 14)
        o += text(L + (a + b) * bw / 2, top + 11, std::to_string(e.seg_quota[s]), "middle", 9,
                  " fill=\"#555\"");
    }
    for (int i = 0; i < n; ++i) {  // mass bars (square-root scale shows the small ones)
      const double h = std::sqrt(e.mass[i] / mx) * (base - top - 16);
      o += fmt("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", L + i * bw, base - h,
               std::max(bw * 0.9, 0.3), h) +
           " fill=\"#4a78b5\"/>\n";
      if (e.kept[i])
        o += fmt("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"8\"", L + i * bw, base + 3,
                 std::max(bw * 0.9, 0.3)) +
             " fill=\"#2ca02c\"/>\n";
    }
    o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, base,
             R, base);
    o += text(L - 4, base + 10, "kept", "end", 9);
    for (int i = 0; i < n; i += std::max(1, n / 8))
      o += text(L + (i + 0.5) * bw, base + 26, std::to_string(e.positions[i]), "middle", 10);
  }
  o += text(W / 2, H - 4,
            "bars: attention mass (sqrt scale); shading: regions (red = wiped out, number = "
            "quota); green ticks: kept tokens; axis: absolute positions",
            "middle", 10);
  return o + "</svg>\n";
}

}  // namespace svg
}  // namespace amskv
