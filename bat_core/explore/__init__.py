"""What the explorer reads from finished runs: families of runs that differ only in λ and seed, the teacher's effect
on the word mix, plotly figures (one pure function each) and offline pyLDAvis HTML. No training, no Streamlit."""
