// Line charts on uPlot (served from the API's jar at /webjars/uplot).

const COLORS = ["#2f6fdf", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#5c940d", "#862e9c"];

export function color(i) {
  return COLORS[i % COLORS.length];
}

/**
 * A chart of one or more series over a shared x (the step). `series` are {label, color?, dash?}.
 * `set(x, ys)` replaces the data; `append(x, values)` adds one point to every series. The element
 * carries `data-points`: how many x values it draws.
 */
export class LineChart {
  constructor(container, title, series, { xLabel = "step", height = 200 } = {}) {
    this.container = container;
    this.container.classList.add("chart");
    this.container.innerHTML = `<h3></h3><div class="plot"></div>`;
    this.container.querySelector("h3").textContent = title;
    this.plotElement = this.container.querySelector(".plot");
    this.series = series;
    this.x = [];
    this.ys = series.map(() => []);
    this.height = height;
    this.xLabel = xLabel;
    this.plot = null;
    this.pending = false;
    this.render();
  }

  set(x, ys) {
    this.x = x;
    this.ys = ys;
    this.redraw();
  }

  append(x, values) {
    const last = this.x.length ? this.x[this.x.length - 1] : -Infinity;
    if (x < last) return;
    if (x === last) {
      values.forEach((v, i) => (this.ys[i][this.ys[i].length - 1] = v));
    } else {
      this.x.push(x);
      values.forEach((v, i) => this.ys[i].push(v));
    }
    this.redraw();
  }

  /** Draws at most every 100 ms, however many points arrive. */
  redraw() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      this.render();
    }, 100);
  }

  render() {
    this.container.dataset.points = String(this.x.length);
    if (!this.x.length) {
      if (this.plot) {
        this.plot.destroy();
        this.plot = null;
      }
      this.plotElement.innerHTML = `<div class="empty">no data yet</div>`;
      return;
    }
    const data = [this.x, ...this.ys];
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.plotElement.innerHTML = "";
    const width = Math.max(300, this.container.clientWidth - 20);
    this.plot = new uPlot(
      {
        width,
        height: this.height,
        scales: { x: { time: false } },
        axes: [{ label: this.xLabel }, { size: 60 }],
        series: [
          { label: this.xLabel },
          ...this.series.map((s, i) => ({
            label: s.label,
            stroke: s.color || color(i),
            width: s.width || 1.5,
            dash: s.dash,
            spanGaps: true,
            points: { show: false },
          })),
        ],
      },
      data,
      this.plotElement,
    );
  }

  destroy() {
    if (this.plot) this.plot.destroy();
  }
}

/** Several (x, y) series with different x values on one shared x axis, gaps as null. */
export function join(seriesList) {
  const xs = [...new Set(seriesList.flatMap((s) => s.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = seriesList.map((s) => {
    const y = new Array(xs.length).fill(null);
    s.x.forEach((x, i) => (y[index.get(x)] = s.y[i]));
    return y;
  });
  return { x: xs, ys };
}
