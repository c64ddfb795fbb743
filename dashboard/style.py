"""A little CSS for the cards (everything else is Streamlit's own theme)."""

import streamlit as st

CSS = """
<style>
/* Colours follow the theme, light or dark (the app follows the system's preference): inside the gallery
   component Streamlit sets its theme as --st-* variables; elsewhere the --cat-* fallbacks below apply. */
:root {--cat-text: #31333f; --cat-muted: #6b7280; --cat-line: rgba(128, 128, 128, 0.35);
       --cat-primary: #4f46e5; --cat-box-bg: transparent;
       --cat-green-bg: rgba(33, 195, 84, 0.14); --cat-green-fg: rgb(21, 130, 55);
       --cat-blue-bg: rgba(28, 131, 225, 0.14); --cat-blue-fg: rgb(0, 84, 163);
       --cat-orange-bg: rgba(255, 164, 33, 0.16); --cat-orange-fg: rgb(170, 85, 0);
       --cat-gray-bg: rgba(128, 132, 149, 0.16); --cat-gray-fg: rgb(85, 88, 103);
       --cat-label-bg: rgba(128, 61, 245, 0.12); --cat-label-fg: rgb(88, 28, 200);}
@media (prefers-color-scheme: dark) {
  :root {--cat-text: #fafafa; --cat-muted: #a3a8b8; --cat-primary: #818cf8;
         --cat-green-fg: rgb(125, 239, 161); --cat-blue-fg: rgb(131, 201, 255); --cat-orange-fg: rgb(255, 209, 106);
         --cat-gray-fg: rgb(213, 218, 229); --cat-label-bg: rgba(155, 93, 229, 0.25); --cat-label-fg: rgb(216, 190, 255);}
}
div[data-testid="stMainBlockContainer"] {padding-top: 4.5rem; padding-bottom: 2rem;}
.cat-text {height: 9.5rem; overflow: hidden; font-size: 0.9rem; line-height: 1.35;
           padding: 0.2rem 0.1rem; color: var(--st-text-color, var(--cat-text));}
.cat-missing {height: 8rem; display: flex; flex-direction: column; justify-content: center; align-items: center;
              background: rgba(128, 128, 128, 0.12); border-radius: 0.4rem; color: var(--st-gray-text-color, var(--cat-muted));
              font-size: 0.8rem; text-align: center;}
.cat-chip-img {display: block; width: 110px; height: 110px; object-fit: contain; border-radius: 0.35rem;
               background: rgba(128, 128, 128, 0.06);}
.cat-chip {height: 5.5rem; width: 110px; overflow: hidden; font-size: 0.78rem; line-height: 1.25;}
/* the gallery: one grid of cards; a card is its content, then the select box and "Similar" side by side */
.cat-grid {display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 0.75rem;}
@media (max-width: 1100px) {.cat-grid {grid-template-columns: repeat(4, minmax(0, 1fr));}}
@media (max-width: 700px) {.cat-grid {grid-template-columns: repeat(2, minmax(0, 1fr));}}
.cat-box {display: flex; flex-direction: column; justify-content: space-between; gap: 0.4rem; min-width: 0;
          border: 1px solid var(--st-border-color, var(--cat-line)); border-radius: 0.5rem;
          padding: 0.6rem 0.6rem 0.4rem 0.6rem; background: var(--cat-box-bg);
          color: var(--st-text-color, var(--cat-text));}
.cat-box.cat-selected {border-color: var(--st-primary-color, var(--cat-primary));
          box-shadow: 0 0 0 1px var(--st-primary-color, var(--cat-primary));
          background: color-mix(in srgb, var(--st-primary-color, var(--cat-primary)) 12%, transparent);}
.cat-card[data-open] {cursor: pointer; border-radius: 0.35rem;}
.cat-card[data-open]:hover .cat-thumb, .cat-card[data-open]:hover .cat-text {outline: 1px solid var(--st-border-color, var(--cat-line));}
.cat-card[data-open]:focus-visible {outline: 2px solid var(--st-primary-color, var(--cat-primary)); outline-offset: 2px;}
.cat-controls {display: flex; align-items: center; gap: 0.5rem; user-select: none;}
.cat-select {display: inline-flex; align-items: center; cursor: pointer; padding: 0.15rem;}
.cat-select input {position: absolute; opacity: 0; width: 1px; height: 1px;}
.cat-select span {width: 1rem; height: 1rem; border-radius: 0.25rem; border: 1px solid var(--st-widget-border-color, var(--cat-line));
                  background: var(--st-background-color, transparent); display: inline-block; position: relative;}
.cat-select input:checked + span {background: var(--st-primary-color, var(--cat-primary));
                  border-color: var(--st-primary-color, var(--cat-primary));}
.cat-select input:checked + span::after {content: ""; position: absolute; left: 0.3rem; top: 0.1rem; width: 0.25rem;
                  height: 0.5rem; border: solid #fff; border-width: 0 2px 2px 0; transform: rotate(45deg);}
.cat-select input:focus-visible + span {outline: 2px solid var(--st-primary-color, var(--cat-primary)); outline-offset: 1px;}
.cat-similar {display: inline-flex; align-items: center; gap: 0.3rem; border: none; background: none; cursor: pointer;
              padding: 0.2rem 0.25rem; font: inherit; font-size: 0.9rem; color: var(--st-text-color, var(--cat-text));
              border-radius: 0.4rem;}
.cat-similar:hover {color: var(--st-primary-color, var(--cat-primary));}
.cat-novector {padding: 0.2rem 0.25rem; font-size: 0.8rem; color: var(--st-gray-text-color, var(--cat-muted));}
.cat-icon {font-family: "Material Symbols Rounded"; font-size: 1.15rem; line-height: 1; font-weight: 400;
           font-feature-settings: "liga"; -webkit-font-feature-settings: "liga";}
.cat-card {display: flex; flex-direction: column; gap: 0.4rem; min-width: 0;}
.cat-thumb {display: block; width: 100%; height: 9.5rem; object-fit: contain; border-radius: 0.35rem;
            background: rgba(128, 128, 128, 0.06);}
.cat-meta {display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem 0.35rem; min-width: 0;}
.cat-meta code {white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.72rem; max-width: 100%;
                color: var(--st-code-text-color, inherit); background: var(--st-code-background-color, rgba(128, 128, 128, 0.12));
                border-radius: 0.25rem; padding: 0 0.2rem;}
.cat-matched {font-size: 0.72rem; opacity: 0.8; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.cat-matched code {font-size: 0.72rem; background: var(--st-code-background-color, rgba(128, 128, 128, 0.12));
                   border-radius: 0.25rem; padding: 0 0.2rem;}
.cat-labels {display: flex; flex-wrap: wrap; gap: 0.25rem;}
.cat-badge {display: inline-block; font-size: 0.8rem; line-height: 1.35; padding: 0.05rem 0.4rem;
            border-radius: 0.5rem; white-space: nowrap; font-weight: 500;}
.cat-green {background: var(--st-green-background-color, var(--cat-green-bg)); color: var(--st-green-text-color, var(--cat-green-fg));}
.cat-blue {background: var(--st-blue-background-color, var(--cat-blue-bg)); color: var(--st-blue-text-color, var(--cat-blue-fg));}
.cat-orange {background: var(--st-orange-background-color, var(--cat-orange-bg)); color: var(--st-orange-text-color, var(--cat-orange-fg));}
.cat-gray {background: var(--st-gray-background-color, var(--cat-gray-bg)); color: var(--st-gray-text-color, var(--cat-gray-fg));}
.cat-label {background: var(--st-violet-background-color, var(--cat-label-bg)); color: var(--st-violet-text-color, var(--cat-label-fg));}
/* the row detail view's tables (escaped text in every cell) */
table.cat-fields {width: 100%; border-collapse: collapse; font-size: 0.9rem; margin: 0 0 0.5rem 0;}
table.cat-fields th {text-align: left; font-weight: 600; color: var(--cat-muted);}
table.cat-fields td, table.cat-fields th {padding: 0.25rem 0.5rem 0.25rem 0; border-bottom: 1px solid var(--cat-line);
                                          vertical-align: top; overflow-wrap: anywhere;}
table.cat-row-fields td:first-child {color: var(--cat-muted); white-space: nowrap; width: 7rem;}
div.st-key-row_detail_media img {max-height: 30rem; object-fit: contain; background: rgba(128, 128, 128, 0.06);}
div[data-testid="stImage"] img {border-radius: 0.35rem; image-rendering: auto;}
div.st-key-toolbar button p, div.st-key-results_head button p {font-size: 0.85rem;}
</style>
"""


def apply() -> None:
    st.html(CSS)
