import { useEffect, useId, useRef } from 'react';
import uPlot from 'uplot';

// A time-series chart drawn by uPlot (canvas): created once, fed new data with setData, resized
// with its container. The canvas is hidden from assistive technology; the caption and the
// summary say what it shows.

export interface Line {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
}

export function Chart({ title, lines, data, unit, summary, height = 200 }: { title: string; lines: Line[]; data: uPlot.AlignedData; unit: string; summary: string; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const id = useId();
  const shape = JSON.stringify(lines);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const fmt = (v: number | null) => (v === null || v === undefined ? '–' : `${Number.isInteger(v) ? v : v.toFixed(v < 10 ? 2 : 0)} ${unit}`);
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max ?? 0, min ?? 0, unit === '%' ? 1 : 10) * 1.1] } },
        axes: [
          { stroke: '#444', grid: { stroke: '#e4e4e4' }, ticks: { stroke: '#bbb' } },
          { stroke: '#444', grid: { stroke: '#e4e4e4' }, ticks: { stroke: '#bbb' }, size: 56, values: (_u, vals) => vals.map((v) => `${v}${unit === '%' ? '%' : ''}`) },
        ],
        series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: l.width ?? 2, ...(l.dash ? { dash: l.dash } : {}), spanGaps: false, value: (_u: uPlot, v: number | null) => fmt(v) }))],
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false } },
      },
      data,
      el,
    );
    plot.current = u;
    const resize = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, unit, height]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure className="chart" aria-labelledby={`${id}-cap`}>
      <figcaption id={`${id}-cap`}>{title}</figcaption>
      <div ref={box} className="chart-box" aria-hidden="true" />
      <p className="muted small">{summary}</p>
    </figure>
  );
}
