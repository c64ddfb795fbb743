"""A little CSS for the cards (everything else is Streamlit's own theme)."""

import streamlit as st

CSS = """
<style>
div[data-testid="stMainBlockContainer"] {padding-top: 4.5rem; padding-bottom: 2rem;}
.cat-text {height: 9.5rem; overflow: hidden; font-size: 0.9rem; line-height: 1.35;
           padding: 0.2rem 0.1rem; color: var(--text-color, #262730);}
.cat-missing {height: 8rem; display: flex; flex-direction: column; justify-content: center; align-items: center;
              background: #f3f4f6; border-radius: 0.4rem; color: #6b7280; font-size: 0.8rem; text-align: center;}
.cat-chip-img {display: block; width: 110px; height: 110px; object-fit: contain; border-radius: 0.35rem;
               background: rgba(128, 128, 128, 0.06);}
.cat-chip {height: 5.5rem; width: 110px; overflow: hidden; font-size: 0.78rem; line-height: 1.25;}
/* the gallery: one grid of cards; a card is its content, then the select box and "Similar" side by side */
.cat-grid {display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 0.75rem;}
@media (max-width: 1100px) {.cat-grid {grid-template-columns: repeat(4, minmax(0, 1fr));}}
@media (max-width: 700px) {.cat-grid {grid-template-columns: repeat(2, minmax(0, 1fr));}}
.cat-box {display: flex; flex-direction: column; justify-content: space-between; gap: 0.4rem; min-width: 0;
          border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; padding: 0.6rem 0.6rem 0.4rem 0.6rem;}
.cat-controls {display: flex; align-items: center; gap: 0.5rem;}
.cat-select {display: inline-flex; align-items: center; cursor: pointer; padding: 0.15rem;}
.cat-select input {position: absolute; opacity: 0; width: 1px; height: 1px;}
.cat-select span {width: 1rem; height: 1rem; border-radius: 0.25rem; border: 1px solid rgba(49, 51, 63, 0.35);
                  background: #fff; display: inline-block; position: relative;}
.cat-select input:checked + span {background: var(--st-primary-color, #ff4b4b); border-color: var(--st-primary-color, #ff4b4b);}
.cat-select input:checked + span::after {content: ""; position: absolute; left: 0.3rem; top: 0.1rem; width: 0.25rem;
                  height: 0.5rem; border: solid #fff; border-width: 0 2px 2px 0; transform: rotate(45deg);}
.cat-select input:focus-visible + span {outline: 2px solid var(--st-primary-color, #ff4b4b); outline-offset: 1px;}
.cat-similar {display: inline-flex; align-items: center; gap: 0.3rem; border: none; background: none; cursor: pointer;
              padding: 0.2rem 0.25rem; font: inherit; font-size: 0.9rem; color: var(--st-text-color, #31333f);
              border-radius: 0.4rem;}
.cat-similar:hover {color: var(--st-primary-color, #ff4b4b);}
.cat-novector {padding: 0.2rem 0.25rem; font-size: 0.8rem; color: rgba(128, 128, 128, 0.9);}
.cat-icon {font-family: "Material Symbols Rounded"; font-size: 1.15rem; line-height: 1; font-weight: 400;
           font-feature-settings: "liga"; -webkit-font-feature-settings: "liga";}
.cat-card {display: flex; flex-direction: column; gap: 0.4rem; min-width: 0;}
.cat-thumb {display: block; width: 100%; height: 9.5rem; object-fit: contain; border-radius: 0.35rem;
            background: rgba(128, 128, 128, 0.06);}
.cat-meta {display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem 0.35rem; min-width: 0;}
.cat-meta code {white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.72rem; max-width: 100%;}
.cat-labels {display: flex; flex-wrap: wrap; gap: 0.25rem;}
.cat-badge {display: inline-block; font-size: 0.8rem; line-height: 1.35; padding: 0.05rem 0.4rem;
            border-radius: 0.5rem; white-space: nowrap; font-weight: 500;}
.cat-green {background: rgba(33, 195, 84, 0.12); color: rgb(21, 130, 55);}
.cat-blue {background: rgba(28, 131, 225, 0.12); color: rgb(0, 84, 163);}
.cat-orange {background: rgba(255, 164, 33, 0.15); color: rgb(196, 99, 0);}
.cat-gray {background: rgba(128, 132, 149, 0.15); color: rgb(85, 88, 103);}
.cat-label {background: rgba(128, 61, 245, 0.10); color: rgb(88, 28, 200);}
div[data-testid="stImage"] img {border-radius: 0.35rem; image-rendering: auto;}
div.st-key-toolbar button p, div.st-key-results_head button p {font-size: 0.85rem;}
</style>
"""


def apply() -> None:
    st.html(CSS)
