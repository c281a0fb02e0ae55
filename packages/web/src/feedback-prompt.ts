import { createElement as h, useEffect, useId, useRef, useState, type ReactElement } from 'react';
import { MAX_COMMENT, SENTIMENTS, sendFeedback, type FeedbackInput, type Sentiment } from './signals';

// "How was the new payment flow?": three choices and an optional comment, sent as feedback about
// a flag (the server attributes it to the variant it evaluates for the user). Plain, unstyled
// HTML: a fieldset/legend radio group (labels, arrow keys, required), a labelled textarea with
// maxLength, a submit button, and a status live region that says thanks. Class names for styling:
// rollgate-feedback, rollgate-feedback-choices, rollgate-feedback-comment, rollgate-feedback-status.

export interface FeedbackPromptProps {
  /** The flag the feedback is about, e.g. "fast-payment". */
  flag: string;
  /** The question, e.g. "How was the new payment flow?" (the group's legend). */
  question: string;
  /** The three choices' labels. @default { positive: 'Good', neutral: 'Okay', negative: 'Bad' } */
  labels?: Partial<Record<Sentiment, string>>;
  /** @default 'Anything to add? (optional)' */
  commentLabel?: string;
  /** @default 'Send' */
  submitLabel?: string;
  /** Said in the live region once sent. @default 'Thanks for your feedback!' */
  thanks?: string;
  /** The OpenFeature domain the Rollgate provider is registered under. @default the default provider */
  domain?: string;
  className?: string;
  /** After sending: what was sent, and whether a Rollgate provider queued it (false: none registered, or tracking off). */
  onSent?: (feedback: FeedbackInput, queued: boolean) => void;
}

const LABELS: Record<Sentiment, string> = { positive: 'Good', neutral: 'Okay', negative: 'Bad' };

export function FeedbackPrompt(props: FeedbackPromptProps): ReactElement {
  const { flag, question, labels, domain, className, onSent } = props;
  const id = useId();
  const [sentiment, setSentiment] = useState<Sentiment | undefined>(undefined);
  const [comment, setComment] = useState('');
  const [sent, setSent] = useState(false);
  const status = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (sent) status.current?.focus(); // the form is gone: keep keyboard users where the answer is
  }, [sent]);

  const submit = (event: { preventDefault(): void }) => {
    event.preventDefault();
    if (!sentiment || sent) return;
    const feedback: FeedbackInput = comment.trim() ? { flag, sentiment, comment } : { flag, sentiment };
    let queued = false;
    try {
      queued = sendFeedback(feedback, domain === undefined ? {} : { domain });
    } catch {
      // an invalid flag prop: nothing is sent, the user is thanked all the same
    }
    setSent(true);
    try {
      onSent?.(feedback, queued);
    } catch {
      // the app's callback must not break the prompt
    }
  };

  const name = `${id}-sentiment`;
  const commentId = `${id}-comment`;
  return h(
    'div',
    { className: className ? `rollgate-feedback ${className}` : 'rollgate-feedback' },
    sent
      ? null
      : h(
          'form',
          { onSubmit: submit },
          h(
            'fieldset',
            { className: 'rollgate-feedback-choices' },
            h('legend', null, question),
            SENTIMENTS.map((s) =>
              h(
                'label',
                { key: s },
                h('input', { type: 'radio', name, value: s, required: true, checked: sentiment === s, onChange: () => setSentiment(s) }),
                ` ${labels?.[s] ?? LABELS[s]}`,
              ),
            ),
          ),
          h('label', { htmlFor: commentId }, props.commentLabel ?? 'Anything to add? (optional)'),
          h('textarea', { id: commentId, className: 'rollgate-feedback-comment', value: comment, maxLength: MAX_COMMENT, rows: 3, onChange: (e: { target: { value: string } }) => setComment(e.target.value) }),
          h('button', { type: 'submit' }, props.submitLabel ?? 'Send'),
        ),
    h('p', { role: 'status', 'aria-live': 'polite', tabIndex: -1, ref: status, className: 'rollgate-feedback-status' }, sent ? (props.thanks ?? 'Thanks for your feedback!') : ''),
  );
}
